-- Test script for the plumbing: touches KEYS[1] and, when ARGV[1] is given, that key too.
rcall("INCR", KEYS[1])
if ARGV[1] then rcall("INCR", ARGV[1]) end
return rcall("GET", KEYS[1])

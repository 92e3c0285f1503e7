-- streams/forget: delete the call records of calls whose replies the client received (what a
-- mutating call does with the ids its call id argument lists; sent alone when no mutating call
-- follows, e.g. by the maintenance sweep of an idle queue).
-- KEYS: 1..11 as every streams script (10 call records, 11 call record times are used).
-- ARGV: 1 a call id argument "|<id1>,<id2>,..." (an empty call id: nothing is recorded).
-- Returns 0.
recalled(ARGV[1])
return 0

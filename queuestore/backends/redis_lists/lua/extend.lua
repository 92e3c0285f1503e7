-- Move a lease's deadline to now + seconds.
-- KEYS: the key block up to the gone set (no ready lists).  ARGV: id, lease token ("" = unguarded), seconds.
-- Returns {code, new deadline as a string}; code as ack.lua.
local K = KEYS
local id, tok, secs = ARGV[1], ARGV[2], tonumber(ARGV[3])
local m = load(K, id)
local res = check_lease(K, m, tok)
if res ~= 1 then return {res, ""} end
m.dl = now_s() + secs
place(K, id, m, "i", true)
return {1, fmt(m.dl)}

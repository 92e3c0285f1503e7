-- Move a lease's deadline to now + seconds.
-- KEYS: the key block up to the gone set (no ready lists).
-- ARGV: id, lease token ("" = unguarded), seconds, call id ("" = none).
-- Returns {code, new deadline as a string ("" unless code is 1)}; code as ack.lua; a retried call
-- (same call id) gets the reply of its first run, so the deadline the server stored.
local K = KEYS
local id, tok, secs, cid = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local prior = recalled(K, cid)
if prior then return prior end
local now = now_s()
local m = load(K, id)
local res = check_lease(K, m, tok)
if res ~= 1 then return record(K, cid, {res, ""}, now) end
m.dl = now + secs
place(K, id, m, "i", true)
return record(K, cid, {1, fmt(m.dl)}, now)

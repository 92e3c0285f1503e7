-- The migration record of a queue (see queuestore._record, whose apply_record_op is the
-- reference semantics): read it, claim or renew its owner lease, write it, release it.
-- KEYS[1]: the record hash (<prefix>{<queue>}:migration).
-- ARGV: op ("read" | "claim" | "update" | "release"), owner id, lease (s), retention (s,
-- "release" only; 0 = keep), then field/value pairs to write ("" as value removes the field).
-- Returns {granted (1 | 0), store time (s, string), HGETALL of the record after the call}.
local key, op, owner = KEYS[1], ARGV[1], ARGV[2]
local lease, keep = tonumber(ARGV[3]), tonumber(ARGV[4])
local t = rcall("TIME")
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function reply(granted)
  return {granted, string.format("%.6f", now), rcall("HGETALL", key)}
end
if op == "read" then return reply(1) end
local holder = rcall("HGET", key, "owner") or ""
local alive = (tonumber(rcall("HGET", key, "deadline") or "0") or 0) > now
local ok
if op == "claim" then
  ok = holder == "" or holder == owner or not alive
else
  ok = holder == owner and owner ~= ""
end
if not ok then return reply(0) end
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] == "" then
    rcall("HDEL", key, ARGV[i])
  else
    rcall("HSET", key, ARGV[i], ARGV[i + 1])
  end
end
if op == "release" then
  rcall("HDEL", key, "owner", "deadline")
  if keep and keep > 0 then rcall("PEXPIRE", key, math.floor(keep * 1000)) end
else
  rcall("HSET", key, "owner", owner, "deadline", string.format("%.17g", now + lease))
  rcall("PERSIST", key)
end
return reply(1)

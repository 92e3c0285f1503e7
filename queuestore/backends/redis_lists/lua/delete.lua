-- Delete one job, whatever its state (ready, delayed, in flight, dead); a job held by a migration
-- or moving to another queue is not deleted. A leased job's token goes to the gone set until its
-- lease deadline, so that its holder's ack, nack, extend or move is told the lease is lost.
-- KEYS: the standard key block.
-- ARGV: id, call id ("" = none).
-- Returns 1 deleted, 0 not stored here (or held, or moving); a retried call (same call id) gets
-- the reply of its first run.
local K = KEYS
local id, cid = ARGV[1], ARGV[2]
local prior = recalled(K, cid)
if prior then
  if prior.err then return prior end
  return prior[1]
end
local now = now_s()
-- forget lease tokens of deleted jobs whose deadline passed (a bounded batch per call)
local old = rcall("ZRANGEBYSCORE", K[GONE], "-inf", fmt(now), "LIMIT", 0, 64)
if #old > 0 then rcall("ZREM", K[GONE], unpack(old)) end
local raw = rcall("HGET", K[META], id)
if not raw then return record(K, cid, {0}, now)[1] end
local m = parse(raw)
if m ~= nil and (m.st == "h" or m.st == "m") then return record(K, cid, {0}, now)[1] end
if m == nil then -- garbage: out of every container it may be in
  for _, set in ipairs({DELAYED, INFLIGHT, DEAD}) do rcall("ZREM", K[set], id) end
else
  if m.st == "i" and m.t then rcall("ZADD", K[GONE], fmt(m.dl or now), m.t) end
  unlist(K, id, m.st)
end
rcall("ZREM", K[TTL], id)
rcall("HDEL", K[JOBS], id)
rcall("HDEL", K[META], id)
return record(K, cid, {1}, now)[1]

-- streams/enqueue_one: store one ready job (no TTL, no due time, no idempotency key): what
-- enqueue.lua does for it when nothing is due. When an expired lease or a due delayed job waits
-- it returns -1 having stored nothing and recorded nothing (only the received call records its
-- call id lists are forgotten, which the full script repeats harmlessly), and the client sends
-- the same arguments to enqueue.lua, which makes those ready first (the ready order). -1 too for
-- a job this script does not take.
-- KEYS and ARGV: enqueue.lua's, with one job (ARGV 4..12: id, body, r, m, a, x, due_ms, idem key,
-- state; 13 retention, 14 queue).
-- Returns {1} stored, {0} already there (a retried call id: the recorded reply), -1 (see above),
-- or the error "QSMOVED <home>" (nothing stored) when a migration moved the queue.
if #ARGV ~= 14 or ARGV[3] ~= "1" or ARGV[9] ~= "0" or ARGV[10] ~= "0" or ARGV[11] ~= "" or ARGV[12] ~= "ready" then
  return -1
end
local cid = ARGV[1]
local prior = recalled(cid)
if prior then return prior end
local home = moved_to(KEYS[13]) if home then return redis.error_reply("QSMOVED " .. home) end
if #rcall("ZRANGEBYSCORE", L, "-inf", now, "LIMIT", 0, 1) > 0 or #rcall("ZRANGEBYSCORE", Z, "-inf", now, "LIMIT", 0, 1) > 0 then
  return -1
end
rcall("ZREMRANGEBYSCORE", KEYS[12], "-inf", now)
local jid = ARGV[4]
local stored = 1
local loc = rcall("HGET", I, jid)
if loc then
  stored = 0
  -- an index entry whose stream entry was deleted behind our back is stale: take the id again
  if string.match(loc, "^%d") and #rcall("XRANGE", S, loc, loc) == 0 then stored = 1 end
end
if stored == 1 then
  local eid = rcall("XADD", S, "*", "j", jid, "b", ARGV[5], "r", ARGV[6], "m", ARGV[7], "a", ARGV[8], "x", ARGV[9])
  rcall("HSET", I, jid, eid)
  rcall("HINCRBY", C, "enqueued", 1)
end
return record(cid, {stored})

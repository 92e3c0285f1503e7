-- Store one ready job (no delay, no TTL, no idempotency key, not an import): what enqueue.lua does
-- for it when nothing is due, given only the keys that takes. When the queue's next sweep is due
-- (the info hash's "due" has come, or is missing) it returns -1 having stored nothing and recorded
-- nothing (only the received call records its call id lists are forgotten, which the full script
-- repeats harmlessly), and the client sends the same arguments to enqueue.lua with the whole key
-- block, which sweeps first (the ready order). -1 too for a job this script does not take.
-- KEYS: jobs, meta, info, wake, calls, calltimes, migration, then the ready list of the job's
-- priority.
-- ARGV: as enqueue.lua's, with one job: mode, idempotency window, call id, id, body, record,
-- idempotency key, priority, available_at, expires_at.
-- Returns {1} stored, {0} already stored (a retried call id: the recorded reply), -1 (see above),
-- or the error "QSMOVED <home>" (nothing stored) when a migration moved the queue.
local p = tonumber(ARGV[8])
if ARGV[1] ~= "enqueue" or ARGV[7] ~= "" or ARGV[9] ~= "" or ARGV[10] ~= "" or #ARGV ~= 10 or not p then
  return -1
end
local K = {
  [JOBS] = KEYS[1], [META] = KEYS[2], [INFO] = KEYS[3], [WAKE] = KEYS[4], [CALLS] = KEYS[5],
  [CALLTIMES] = KEYS[6], [MIGRATION] = KEYS[7], [READY0 + p] = KEYS[8],
}
local cid = ARGV[3]
local prior = recalled(K, cid)
if prior then return prior end
local home = moved_to(K) if home then return redis.error_reply("QSMOVED " .. home) end
local now = now_s()
local due = tonumber(rcall("HGET", K[INFO], "due"))
if not (due and due > now) then return -1 end

local id, body, rec = ARGV[4], ARGV[5], ARGV[6]
local res = 0
local old = rcall("HGET", K[META], id)
if not (old and string.match(old, HEADER)) then
  rcall("HSET", K[JOBS], id, body)
  mark(K, p)
  rcall("LPUSH", K[READY0 + p], id)
  rcall("HSET", K[META], id, "r" .. string.sub(rec, 2))
  res = 1
end
wake(K, res)
return record(K, cid, {res}, now)

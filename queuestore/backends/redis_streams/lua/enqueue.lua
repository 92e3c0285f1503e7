-- streams/enqueue: store jobs as ready (stream entry), delayed or dead; idempotent by job id
-- (and by idempotency key within its window). Also used by import_jobs and cross-slot moves.
-- KEYS: 1 stream, 2 idx, 3 delayed, 4 parked bodies, 5 parked meta, 6 ttl, 7 dead, 8 counters,
--       9 leases (unused), 10 call records, 11 call record times, 12 idem, 13 migration record
-- ARGV: 1 call id ("" = not recorded), 2 idem window ms, 3 n,
--       then n x 9: id, body, r, m, a, x, due_ms, idem key, state; then retention (0/1), queue
-- What is due (expired leases, due delayed jobs) is made ready first, so the jobs stored go after.
-- Returns one 1 (stored) or 0 (already there) per job (a retried call id: the recorded reply);
-- the error "QSMOVED <home>" (nothing stored) when a migration moved the queue.
local K = KEYS[12]
local cid, window, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local prior = recalled(cid)
if prior then return prior end
local home = moved_to(KEYS[13]) if home then return redis.error_reply("QSMOVED " .. home) end
retention, queue = ARGV[4 + n * 9] == "1", ARGV[5 + n * 9]
catch_up(true)
rcall("ZREMRANGEBYSCORE", K, "-inf", NOW_MS)
local out, added = {}, 0
-- the jobs' index entries, read with one HMGET (ids seen earlier in the call count as stored);
-- those of the entries added are written with one HSET at the end (ix: id, entry id, ...)
local locs, seen, ix = {}, {}, {}
if n > 0 then
  local ids = {}
  for i = 0, n - 1 do ids[i + 1] = ARGV[4 + i * 9] end
  locs = rcall("HMGET", I, unpack(ids))
end
for i = 0, n - 1 do
  local base = 4 + i * 9
  local jid, body, r, m, a, x = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], ARGV[base + 4], ARGV[base + 5]
  local due, ikey, state = tonumber(ARGV[base + 6]), ARGV[base + 7], ARGV[base + 8]
  local stored = 1
  local loc = locs[i + 1]
  if seen[jid] then loc = "seen" end
  if loc then
    stored = 0
    -- an index entry whose stream entry was deleted behind our back is stale: take the id again
    if string.match(loc, "^%d") and #rcall("XRANGE", S, loc, loc) == 0 then stored = 1 end
  end
  if stored == 1 and ikey ~= "" then
    local until_ms = rcall("ZSCORE", K, ikey)
    if until_ms and tonumber(until_ms) > now then stored = 0 else rcall("ZADD", K, now + window, ikey) end
  end
  if stored == 1 then
    if state == "dead" then
      local eid = rcall("XADD", D, "*", "j", jid, "b", body, "r", r, "m", m, "a", a, "x", x)
      local k = #ix
      ix[k + 1] = jid
      ix[k + 2] = "X" .. eid
    elseif state == "delayed" or (due > now) then
      park(jid, body, {r = r, m = m, a = a, x = x}, due)
    else
      local eid = rcall("XADD", S, "*", "j", jid, "b", body, "r", r, "m", m, "a", a, "x", x)
      local k = #ix
      ix[k + 1] = jid
      ix[k + 2] = eid
    end
    if state ~= "dead" and tonumber(x) > 0 then rcall("ZADD", T, x, jid) end
    added = added + 1
    seen[jid] = true
  end
  out[#out + 1] = stored
end
if #ix > 0 then rcall("HSET", I, unpack(ix)) end
if added > 0 then rcall("HINCRBY", C, "enqueued", added) end
return record(cid, out)

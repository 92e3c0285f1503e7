-- streams/enqueue_one: store one ready job (no TTL, no due time, no idempotency key): what
-- enqueue.lua does for it when nothing is due. When an expired lease or a due delayed job waits
-- it returns -1 having stored nothing and recorded nothing (only the received call records its
-- call id lists are forgotten, which the full script repeats harmlessly), and the client sends
-- the call, with the same call id, to enqueue.lua, which makes those ready first (the ready
-- order).
-- KEYS: those of enqueue.lua's it touches: 1 stream, 2 idx, 3 delayed, 4 counters, 5 leases,
-- 6 call records, 7 call record times, 8 migration record: its own order, not the library's
-- block (so it names none of the library's key locals: S, I, ...).
-- ARGV: 1 call id, then enqueue.lua's fields of this one job less those it leaves at their
-- defaults (x 0, due 0, no idempotency key, state ready): 2 id, 3 body, 4 r, 5 m, 6 a.
-- Returns {1} stored, {0} already there (a retried call id: the recorded reply), -1 (see above),
-- or the error "QSMOVED <home>" (nothing stored) when a migration moved the queue.
--
-- Written out, using none of the library's functions but the clock: Redis runs a script's top
-- level on every call, and each library function it names is a closure made and collected per
-- call (docs/benchmarks.md, "A cheaper lone call"). What it reads and writes is the library's:
-- the call id argument (call_arg), the call record of one status ("[1]" or "[0]", as record
-- writes it; recalled reads it back) timed in ms, and the migration seal (moved_to). On its turn
-- to prune old call records (prune_turn: the call id's, so the full script's turn too) it
-- declines when there is something to prune, and enqueue.lua prunes. Idempotency keys past their
-- window are left to enqueue.lua too (the one script that stores keys, and reads a key past its
-- window as absent).
local arg = ARGV[1]
if #ARGV ~= 6 or arg == "" then return -1 end
local cid, listed = arg, nil
local bar = string.find(arg, "|", 1, true)
if bar then cid, listed = string.sub(arg, 1, bar - 1), string.sub(arg, bar + 1) end
if cid == "" then return -1 end
if listed then
  local ids = {}
  for id in string.gmatch(listed, "[^,]+") do ids[#ids + 1] = id end
  rcall("HDEL", KEYS[6], unpack(ids))
  rcall("ZREM", KEYS[7], unpack(ids))
end
local prior = rcall("HGET", KEYS[6], cid)
if prior == "[1]" then return {1} elseif prior == "[0]" then return {0} end
if prior then return redis.error_reply("QSUNKNOWN call record " .. cid .. " is unreadable") end
local home = rcall("HGET", KEYS[8], "home")
if home then return redis.error_reply("QSMOVED " .. home) end
if #rcall("ZRANGEBYSCORE", KEYS[5], "-inf", NOW_MS, "LIMIT", 0, 1) > 0 or #rcall("ZRANGEBYSCORE", KEYS[3], "-inf", NOW_MS, "LIMIT", 0, 1) > 0 then
  return -1
end
local n = #cid
if (string.byte(cid, n) + string.byte(cid, n > 1 and n - 1 or n)) % 8 == 0 then
  local oldest = rcall("ZRANGE", KEYS[7], "0", "0", "WITHSCORES")
  if (oldest[2] and tonumber(oldest[2]) < now - CALL_WINDOW_MS) or rcall("ZCARD", KEYS[7]) > CALL_MAX then
    return -1
  end
end
local jid = ARGV[2]
local stored = 1
local loc = rcall("HGET", KEYS[2], jid)
if loc then
  stored = 0
  -- an index entry whose stream entry was deleted behind our back is stale: take the id again
  if string.match(loc, "^%d") and #rcall("XRANGE", KEYS[1], loc, loc) == 0 then stored = 1 end
end
if stored == 1 then
  local eid = rcall("XADD", KEYS[1], "*", "j", jid, "b", ARGV[3], "r", ARGV[4], "m", ARGV[5], "a", ARGV[6], "x", "0")
  rcall("HSET", KEYS[2], jid, eid)
  rcall("HINCRBY", KEYS[4], "enqueued", "1")
end
rcall("HSET", KEYS[6], cid, stored == 1 and "[1]" or "[0]")
rcall("ZADD", KEYS[7], NOW_MS, cid)
return {stored}

-- Store one ready job (no delay, no TTL, no idempotency key, not an import): what enqueue.lua does
-- for it when nothing is due, given only the keys and arguments that takes. When the queue's
-- next sweep is due (the info hash's "due" has come, or is missing) it returns -1 having stored
-- nothing and recorded nothing (only the received call records its call id lists are forgotten,
-- which the full script repeats harmlessly), and the client sends the call, with the same call
-- id, to enqueue.lua with the whole key block, which sweeps first (the ready order).
-- KEYS: 1 jobs, 2 meta, 3 info, 4 wake, 5 calls, 6 calltimes, 7 migration, 8 the ready list of
-- the job's priority.
-- ARGV: 1 call id, 2 id, 3 body, 4 record, 5 priority (enqueue.lua's for this one job, less the
-- fields it leaves at their defaults: mode "enqueue", no idempotency key, available_at or
-- expires_at).
-- Returns {1} stored, {0} already stored (a retried call id: the recorded reply), -1 (see above),
-- or the error "QSMOVED <home>" (nothing stored) when a migration moved the queue.
--
-- Written out, using none of the library's functions or tables: Redis runs a script's top level
-- on every call, and each library function it names is a closure made and collected per call
-- (about a quarter of this script's instructions; docs/benchmarks.md, "A cheaper lone call").
-- What it reads and writes is the library's: the call id argument (call_arg), the call record
-- of one status ("#1" or "#0", as packed_statuses writes it; recalled reads it back) timed in
-- whole seconds (record), the ne:<p> mark (mark) and the wake tokens (wake). On its turn to
-- prune old call records (prune_turn: the call id's, so the full script's turn too) it declines
-- when there is something to prune, and enqueue.lua prunes.
local p, arg = tonumber(ARGV[5]), ARGV[1]
if #ARGV ~= 5 or not p or arg == "" then return -1 end
local cid, listed = arg, nil
local bar = string.find(arg, "|", 1, true)
if bar then cid, listed = string.sub(arg, 1, bar - 1), string.sub(arg, bar + 1) end
if cid == "" then return -1 end
if listed then
  local ids = {}
  for id in string.gmatch(listed, "[^,]+") do ids[#ids + 1] = id end
  rcall("HDEL", KEYS[5], unpack(ids))
  rcall("ZREM", KEYS[6], unpack(ids))
end
local prior = rcall("HGET", KEYS[5], cid)
if prior == "#1" then return {1} elseif prior == "#0" then return {0} end
if prior then return redis.error_reply("QSUNKNOWN call record " .. cid .. " is unreadable") end
local home = rcall("HGET", KEYS[7], "home")
if home then return redis.error_reply("QSMOVED " .. home) end
local t = rcall("TIME")
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
-- the due time, and whether the ready list is marked already
local marked = "ne:" .. ARGV[5]
local info = rcall("HMGET", KEYS[3], "due", marked)
local due = tonumber(info[1])
if not (due and due > now) then return -1 end
local n = #cid
if (string.byte(cid, n) + string.byte(cid, n > 1 and n - 1 or n)) % 8 == 0 then
  local oldest = rcall("ZRANGE", KEYS[6], "0", "0", "WITHSCORES")
  if (oldest[2] and tonumber(oldest[2]) < now - CALL_WINDOW) or rcall("ZCARD", KEYS[6]) > CALL_MAX then
    return -1
  end
end

local id, res = ARGV[2], 0
local old = rcall("HGET", KEYS[2], id)
if not (old and string.match(old, HEADER)) then
  rcall("HSET", KEYS[1], id, ARGV[3])
  if not info[2] then rcall("HSET", KEYS[3], marked, "1") end
  rcall("LPUSH", KEYS[8], id)
  rcall("HSET", KEYS[2], id, "r" .. string.sub(ARGV[4], 2))
  res = 1
  if rcall("LLEN", KEYS[4]) < WAKE_MAX then rcall("RPUSH", KEYS[4], "1") end
end
rcall("HSET", KEYS[5], cid, res == 1 and "#1" or "#0")
rcall("ZADD", KEYS[6], t[1], cid)
return {res}

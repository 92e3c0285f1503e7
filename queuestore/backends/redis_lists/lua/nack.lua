-- Give a leased job back: requeue (maybe delayed) with retry_count + 1, or dead-letter it
-- (requeue = 0, or past max_retries). Also buries a job whose body does not decode.
-- Without a delay the retry backoff applies: min(max, base * factor ^ retry_count) * spread,
-- with the retry count before this nack (no backoff given: ready at once).
-- KEYS: the standard key block.
-- ARGV: id, lease token ("" = unguarded), requeue (1/0), delay (s; "" = the backoff's), has error
-- (1/0), error, call id ("" = none), then optionally the backoff: base (s), factor, max (s),
-- spread (the jitter multiplier, drawn by the caller).
-- Returns {code, where}: code as ack.lua; where "r" | "d" | "x"; a retried call (same call id)
-- gets the reply of its first run.
local K = KEYS
local id, tok, requeue, delay, cid = ARGV[1], ARGV[2], ARGV[3] == "1", tonumber(ARGV[4]), ARGV[7]
local prior = recalled(K, cid)
if prior then return prior end
local err = nil
if ARGV[5] == "1" then err = ARGV[6] end
local m = load(K, id)
local now = now_s()
if m == nil and not requeue and bury_held_garbage(K, id, tok, err, now) then return record(K, cid, {1, "x"}, now) end
local res = check_lease(K, m, tok)
if res ~= 1 then return record(K, cid, {res, ""}, now) end
local woken = catch_up(K, now, false)
if requeue then
  if delay == nil then
    delay = 0
    if ARGV[8] then
      local base, factor = tonumber(ARGV[8]), tonumber(ARGV[9])
      local most, spread = tonumber(ARGV[10]), tonumber(ARGV[11])
      delay = math.min(most, base * factor ^ (m.rc or 0)) * spread
    end
  end
  retry(K, id, m, now, delay, err)
else
  if err then m.le = err end
  kill(K, id, m, err or "rejected", now)
end
rcall("ZREM", K[INFLIGHT], id)
if m.st == "r" then woken = woken + 1 end
wake(K, woken)
return record(K, cid, {1, m.st}, now)

-- Give a leased job back: requeue (maybe delayed) with retry_count + 1, or dead-letter it
-- (requeue = 0, or past max_retries). Also buries a job whose body does not decode.
-- KEYS: the standard key block.
-- ARGV: id, lease token ("" = unguarded), requeue (1/0), delay (s), has error (1/0), error,
-- call id ("" = none).
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
local res = check_lease(m, tok)
if res ~= 1 then return record(K, cid, {res, ""}, now) end
local woken = catch_up(K, now, false)
if requeue then
  retry(K, id, m, now, delay, err)
else
  if err then m.le = err end
  kill(K, id, m, err or "rejected", now)
end
rcall("ZREM", K[INFLIGHT], id)
if m.st == "r" then woken = woken + 1 end
wake(K, woken)
return record(K, cid, {1, m.st}, now)

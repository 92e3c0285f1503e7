-- Cross-slot move, step 2 (target): store the job as ready, once. A receipt in the inbox set
-- (kept for the idempotency window), keyed by the job id and the move's token, makes a re-run of
-- this move after a crash a no-op, even after the job was consumed here; another move of the
-- same id (a job moved A -> B -> A -> B) has another token, so it is stored again.
-- KEYS: the target key block, then the inbox set (EXTRA).
-- ARGV: id, body, record (as move_out returned it), source queue name, receipt window (s), sweep
-- limit, move token.
-- A job moved by a redrive (flag rd) arrives with retry_count 0.
-- Returns 1 stored (now or before), -3 the id is already in the target (another job); the
-- error "QSMOVED <home>" (nothing stored) when a migration moved the target queue.
local K = KEYS
local id, body, raw, source, window, limit = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6]
local receipt = id .. "\031" .. (ARGV[7] or "")
local now = now_s()
if rcall("ZSCORE", K[EXTRA], receipt) then return 1 end
local home = moved_to(K) if home then return redis.error_reply("QSMOVED " .. home) end
if rcall("HEXISTS", K[META], id) == 1 then return -3 end
local m = parse(raw)
if m == nil then return redis.error_reply("move_in: the moved record does not parse") end
if m.rd then m.rc = 0 end -- a redrive
m.t, m.dl, m.av, m.dr, m.da, m.hf, m.mt, m.ep, m.mk, m.rd = nil, nil, nil, nil, nil, nil, nil, nil, nil, nil
m.o = source
if body ~= "" then rcall("HSET", K[JOBS], id, body) end
local woken = catch_up(K, now, true)
place(K, id, m, "r", false)
rcall("ZADD", K[EXTRA], fmt(now), receipt)
local old = rcall("ZRANGEBYSCORE", K[EXTRA], "-inf", fmt(now - window), "LIMIT", 0, limit)
if #old > 0 then rcall("ZREM", K[EXTRA], unpack(old)) end
wake(K, 1 + woken)
return 1

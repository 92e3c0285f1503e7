-- Store jobs, idempotently by id: body first, then the state's list or set, then the record,
-- so a prefix left by an error is completed by the retry (an id without a record is rewritten;
-- an entry without a record is dropped when popped).
-- KEYS: the standard key block.
-- ARGV: mode ("enqueue" | "import"), idempotency window (s), call id ("" = none), then per job: id, body, record,
-- idempotency key, priority, available_at ("" = none), expires_at ("" = none).
-- "import" keeps a DEAD job dead (state "x" in its record); otherwise placed by available_at.
-- Returns one integer per job: 1 stored, 0 already stored (id, or key within the window); a
-- retried call (same call id) gets the reply of its first run; the error "QSMOVED <home>"
-- (nothing stored) when a migration moved the queue.
local K = KEYS
local mode, window, cid = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local prior = recalled(K, cid)
if prior then return prior end
local home = moved_to(K) if home then return redis.error_reply("QSMOVED " .. home) end
local now = now_s()
local out, ready = {}, catch_up(K, now, true)

for i = 4, #ARGV, 7 do
  local id, body, rec, key = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local p, av, x = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6])
  local res = 0
  local old = rcall("HGET", K[META], id)
  if not (old and string.match(old, HEADER)) then
    local live = key ~= "" and tonumber(rcall("ZSCORE", K[IDEM], key) or "0") > now
    if not live then
      if key ~= "" then
        rcall("ZADD", K[IDEM], fmt(now + window), key)
        due_at(K, now + window)
      end
      rcall("HSET", K[JOBS], id, body)
      if mode == "import" and string.sub(rec, 1, 1) == "x" then
        place(K, id, parse(rec), "x", false)
      else
        if av and av > now then
          rcall("ZADD", K[DELAYED], fmt(av), id)
          due_at(K, av)
          rec = delayed_record(K, rec)
        else
          mark(K, p)
          rcall("LPUSH", K[READY0 + p], id)
          ready = ready + 1
          rec = "r" .. string.sub(rec, 2)
        end
        if x then
          rcall("ZADD", K[TTL], fmt(x), id)
          due_at(K, x)
        end
        rcall("HSET", K[META], id, rec)
      end
      res = 1
    end
  end
  out[#out + 1] = res
end
wake(K, ready)
return record(K, cid, out, now)

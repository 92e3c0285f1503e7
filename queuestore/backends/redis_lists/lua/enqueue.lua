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
local GATHER_MAX = 500 -- jobs written together at most (unpack's stack: two values a job)
local mode, window, cid = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local prior = recalled(K, cid)
if prior then return prior end
local home = moved_to(K) if home then return redis.error_reply("QSMOVED " .. home) end
local now = now_s()
local out, ready = {}, catch_up(K, now, true)

-- Jobs of the common kind (mode enqueue, ready now, no idempotency key, no TTL) are gathered and
-- written together: one HMGET of their records, one HSET of the bodies, one LPUSH per priority,
-- one HSET of the records (body, then list, then record, as one by one). A job of another kind
-- first writes those gathered before it, so the ready order is the call's order.
local ids, bodies, recs, prios, slots, seen = {}, {}, {}, {}, {}, {}
local function flush()
  local n = #ids
  if n == 0 then return end
  local olds = rcall("HMGET", K[META], unpack(ids))
  local jb, mt, lists = {}, {}, {}
  for j = 1, n do
    local id, old = ids[j], olds[j]
    if seen[id] or (old and string.match(old, HEADER)) then
      out[slots[j]] = 0
    else
      seen[id] = true
      jb[#jb + 1] = id
      jb[#jb + 1] = bodies[j]
      mt[#mt + 1] = id
      mt[#mt + 1] = "r" .. string.sub(recs[j], 2)
      local l = lists[prios[j]]
      if not l then
        l = {}
        lists[prios[j]] = l
      end
      l[#l + 1] = id
      out[slots[j]] = 1
    end
  end
  if #jb > 0 then
    rcall("HSET", K[JOBS], unpack(jb))
    for p, l in pairs(lists) do
      mark(K, p)
      rcall("LPUSH", K[READY0 + p], unpack(l))
      ready = ready + #l
    end
    rcall("HSET", K[META], unpack(mt))
  end
  ids, bodies, recs, prios, slots = {}, {}, {}, {}, {}
end

for i = 4, #ARGV, 7 do
  local id, body, rec, key = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local p, av, x = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]), tonumber(ARGV[i + 6])
  local slot = (i - 4) / 7 + 1
  if key == "" and mode ~= "import" and not (av and av > now) and not x then
    local n = #ids + 1
    ids[n], bodies[n], recs[n], prios[n], slots[n] = id, body, rec, p, slot
    if n == GATHER_MAX then flush() end
  else
    flush()
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
    out[slot] = res
  end
end
flush()
wake(K, ready)
return record(K, cid, out, now)

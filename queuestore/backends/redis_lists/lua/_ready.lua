-- queuestore lists library, part 2 (after _lib.lua in every script): the ready order, the
-- memory backend's. A job is ready from the moment it comes due, and every script that stores,
-- requeues or leases first makes ready what is due -- expired leases in deadline order (ties in
-- lease order: the token's number), then due delayed jobs in due order (ties in store order:
-- the "ds" sequence number of their record) -- so a job it then pushes goes after them.

-- the members of a sorted set that are due (in-flight: scored by minus the deadline), with
-- their records, at most limit
local function due_slice(K, key, rev, now, limit)
  local got
  if rev then
    got = rcall("ZREVRANGEBYSCORE", key, "+inf", lease_score(now), "WITHSCORES", "LIMIT", 0, limit)
  else
    got = rcall("ZRANGEBYSCORE", key, "-inf", fmt(now), "WITHSCORES", "LIMIT", 0, limit)
  end
  local out = {}
  for i = 1, #got, 2 do
    local raw = rcall("HGET", K[META], got[i])
    local s = tonumber(got[i + 1]) or 0
    if rev then s = -s end
    out[#out + 1] = {id = got[i], raw = raw, m = parse(raw), s = s, n = #out + 1}
  end
  return out
end

-- ties of one due time: leases by token (same call: same prefix, then the lease number),
-- delayed jobs by store sequence; then the order the slice came in
local function tie_key(e, rev)
  if not e.m then return "" end
  if rev then
    local t = type(e.m.t) == "string" and e.m.t or ""
    return string.format("%06d", #t) .. t
  end
  return string.format("%020d", tonumber(e.m.ds) or 0)
end

local function in_due_order(slice, rev)
  for _, e in ipairs(slice) do e.k = tie_key(e, rev) end
  table.sort(slice, function(x, y)
    if x.s ~= y.s then return x.s < y.s end
    if x.k ~= y.k then return x.k < y.k end
    return x.n < y.n
  end)
  return slice
end

-- the sweep: reclaim (unless reclaim is false: a lease holder's nack leaves expired leases to
-- the next enqueue or dequeue, as in the memory backend), promote, expire, forget old
-- idempotency keys, each step bounded by limit; stores the next due time in info.due.
-- Returns {reclaimed, dead, promoted, expired, buried, due}.
local function sweep_due(K, now, limit, reclaim)
  local c = {reclaimed = 0, dead = 0, promoted = 0, expired = 0, buried = 0}
  -- 1. expired leases: ready again with retry_count + 1, or dead past max_retries
  for _, e in ipairs(reclaim and in_due_order(due_slice(K, K[INFLIGHT], true, now, limit), true) or {}) do
    local id, m = e.id, e.m
    if m == nil and e.raw then
      bury_garbage(K, id, "corrupt or missing job metadata", now)
      c.buried = c.buried + 1
    elseif m == nil or m.st ~= "i" then
      rcall("ZREM", K[INFLIGHT], id) -- stale entry
    else
      local back = retry(K, id, m, now, 0, "lease expired")
      rcall("ZREM", K[INFLIGHT], id)
      if back then c.reclaimed = c.reclaimed + 1 else c.dead = c.dead + 1 end
    end
  end
  -- 2. due delayed jobs: to the tail of their priority
  for _, e in ipairs(in_due_order(due_slice(K, K[DELAYED], false, now, limit), false)) do
    local id, m = e.id, e.m
    if m == nil and e.raw then
      bury_garbage(K, id, "corrupt or missing job metadata", now)
      c.buried = c.buried + 1
    elseif m == nil or m.st ~= "d" then
      rcall("ZREM", K[DELAYED], id)
    else
      m.ds = nil
      place(K, id, m, "r", false)
      rcall("ZREM", K[DELAYED], id)
      c.promoted = c.promoted + 1
    end
  end
  -- 3. waiting jobs past their TTL: dropped (counted)
  for _, id in ipairs(rcall("ZRANGEBYSCORE", K[TTL], "-inf", fmt(now), "LIMIT", 0, limit)) do
    local m = load(K, id)
    if m ~= nil and (m.st == "r" or m.st == "d") then
      unlist(K, id, m.st)
      rcall("HDEL", K[JOBS], id)
      rcall("HDEL", K[META], id)
      c.expired = c.expired + 1
    end
    rcall("ZREM", K[TTL], id)
  end
  -- 4. the ready lists that hold entries are marked (repairs a lost or damaged info hash)
  for p = PRIO_MIN, PRIO_MAX do
    if rcall("LLEN", K[READY0 + p]) > 0 then mark(K, p) end
  end
  -- 5. idempotency keys past their window
  local old_keys = rcall("ZRANGEBYSCORE", K[IDEM], "-inf", fmt(now), "LIMIT", 0, limit)
  if #old_keys > 0 then rcall("ZREM", K[IDEM], unpack(old_keys)) end
  c.due = next_due(K) or tonumber(NEVER)
  rcall("HSET", K[INFO], "due", fmt(c.due))
  return c
end

-- before a script stores or requeues a job: the sweep, when the info hash says something is due
-- (one HGET when nothing is). Returns how many jobs it made ready.
local CATCH_UP_LIMIT = 1000
local function catch_up(K, now, reclaim)
  local due = tonumber(rcall("HGET", K[INFO], "due"))
  if due and due > now then return 0 end
  local c = sweep_due(K, now, CATCH_UP_LIMIT, reclaim)
  return c.reclaimed + c.promoted
end

-- the record of a job enqueued delayed: state "d" and its store sequence number (ties of one
-- due time are promoted in store order)
local function delayed_record(K, rec)
  local m = parse(rec)
  if not m then return "d" .. string.sub(rec, 2) end
  m.st, m.ds = "d", rcall("HINCRBY", K[INFO], "seq", 1)
  return pack(m)
end

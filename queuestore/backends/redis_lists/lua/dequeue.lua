-- Sweep (reclaim expired leases, promote due delayed jobs, drop waiting jobs past their TTL,
-- forget old idempotency keys; each bounded by ARGV[3]) and then lease up to ARGV[1] ready jobs.
-- Never blocks. ARGV[1] = 0 is a sweep only (the maintenance loop).
-- KEYS: the standard key block.
-- ARGV: count, visibility (s), sweep limit, bury limit, then a fresh lease token prefix: the
-- n-th job leased by this call gets the token prefix .. n (the prefix is unique per call).
-- Returns {reclaimed, dead, promoted, expired, buried, seconds until next due or "", id, body, meta, ...}.
local K = KEYS
local count, vis, limit, bury_limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_s()
local reclaimed, dead, promoted, expired, buried = 0, 0, 0, 0, 0

-- 1. expired leases: ready again with retry_count + 1, or dead past max_retries
for _, id in ipairs(rcall("ZRANGEBYSCORE", K[INFLIGHT], "-inf", fmt(now), "LIMIT", 0, limit)) do
  local m = unpack_meta(rcall("HGET", K[META], id))
  if m == nil then
    bury_garbage(K, id, "corrupt or missing job metadata", now)
    buried = buried + 1
  elseif m.st ~= "i" then
    rcall("ZREM", K[INFLIGHT], id) -- stale entry
  else
    local back = retry(K, id, m, now, 0, "lease expired")
    rcall("ZREM", K[INFLIGHT], id)
    if back then reclaimed = reclaimed + 1 else dead = dead + 1 end
  end
end

-- 2. due delayed jobs: to the tail of their priority
for _, id in ipairs(rcall("ZRANGEBYSCORE", K[DELAYED], "-inf", fmt(now), "LIMIT", 0, limit)) do
  local m = unpack_meta(rcall("HGET", K[META], id))
  if m == nil then
    bury_garbage(K, id, "corrupt or missing job metadata", now)
    buried = buried + 1
  elseif m.st ~= "d" then
    rcall("ZREM", K[DELAYED], id)
  else
    place(K, id, m, "r", false)
    rcall("ZREM", K[DELAYED], id)
    promoted = promoted + 1
  end
end

-- 3. waiting jobs past their TTL: dropped (counted)
for _, id in ipairs(rcall("ZRANGEBYSCORE", K[TTL], "-inf", fmt(now), "LIMIT", 0, limit)) do
  local m = unpack_meta(rcall("HGET", K[META], id))
  if m ~= nil and (m.st == "r" or m.st == "d") then
    rcall("ZREM", K[STATE_SET[m.st]], id)
    rcall("HDEL", K[JOBS], id)
    rcall("HDEL", K[META], id)
    expired = expired + 1
  end
  rcall("ZREM", K[TTL], id)
end

-- 4. idempotency keys past their window
local old_keys = rcall("ZRANGEBYSCORE", K[IDEM], "-inf", fmt(now), "LIMIT", 0, limit)
if #old_keys > 0 then rcall("ZREM", K[IDEM], unpack(old_keys)) end

-- 5. lease: meta and in-flight entry first, ready entry removed last
local out = {}
local leased, steps = 0, 0
while leased < count and steps < count + bury_limit + limit do
  steps = steps + 1
  local head = rcall("ZRANGE", K[READY], 0, 0)
  if #head == 0 then break end
  local id = head[1]
  local m = unpack_meta(rcall("HGET", K[META], id))
  local body = rcall("HGET", K[JOBS], id)
  if m == nil then
    if buried >= bury_limit then break end
    bury_garbage(K, id, "corrupt or missing job metadata", now)
    buried = buried + 1
  elseif m.st ~= "r" then
    rcall("ZREM", K[READY], id)
  elseif not body then
    if buried >= bury_limit then break end
    m.le = "job body is missing"
    kill(K, id, m, "job body is missing", now)
    rcall("ZREM", K[READY], id)
    buried = buried + 1
  else
    leased = leased + 1
    m.a = (m.a or 0) + 1
    m.sa = now
    m.t = ARGV[5] .. leased
    m.dl = now + vis
    place(K, id, m, "i", true)
    rcall("ZREM", K[READY], id)
    out[#out + 1] = id
    out[#out + 1] = body
    out[#out + 1] = cmsgpack.pack(m)
  end
end

-- wake other waiters: for what the sweep made ready, and to keep a chain going while work remains
local woken = reclaimed + promoted
if leased > 0 and rcall("ZCARD", K[READY]) > 0 then woken = woken + 1 end
wake(K, woken)

local next_due = ""
local firsts = {}
for _, set in ipairs({DELAYED, INFLIGHT}) do
  local f = rcall("ZRANGE", K[set], 0, 0, "WITHSCORES")
  if #f > 0 then firsts[#firsts + 1] = tonumber(f[2]) end
end
if #firsts > 0 then
  local due = math.min(unpack(firsts)) - now
  if due < 0 then due = 0 end
  next_due = fmt(due)
end

local res = {reclaimed, dead, promoted, expired, buried, next_due}
for _, v in ipairs(out) do res[#res + 1] = v end
return res

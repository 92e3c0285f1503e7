-- Purge jobs of one state (ready, delayed or dead): they are gone (not acked, not counted).
-- Either the given ids (those not in the state here are skipped) or one page of the state: ready
-- jobs from the heads of their lists, highest priority first, after the plain-producer entries
-- not adopted yet; delayed and dead jobs from the start of their sorted set. Every entry a page
-- reads leaves its list or set (stale entries are dropped, garbage is dead-lettered), so the next
-- page starts where this one ended.
-- KEYS: the standard key block.
-- ARGV: call id ("" = none), state code ("r" | "d" | "x"), mode ("ids": the ids that follow;
-- "page": one page), page size, id...
-- Returns {purged, more (1 when a full page was read, 0 at the end)}; a retried call (same call
-- id) gets the reply of its first run.
local K = KEYS
local cid, st, mode, size = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local prior = recalled(K, cid)
if prior then return prior end
local now = now_s()
local n, more = 0, 0

local function forget(id)
  rcall("ZREM", K[TTL], id)
  rcall("HDEL", K[JOBS], id)
  rcall("HDEL", K[META], id)
  n = n + 1
end

if mode == "ids" then
  for i = 5, #ARGV do
    local id = ARGV[i]
    local m = load(K, id)
    if m and m.st == st then
      unlist(K, id, st)
      forget(id)
    end
  end
elseif st == "r" then
  local budget = size
  local plain = head_entries(K[READY], budget)
  drop_head(K[READY], #plain)
  n = n + #plain
  budget = budget - #plain
  for p = PRIO_MAX, PRIO_MIN, -1 do
    while budget > 0 do
      local want = budget
      local popped = head_entries(K[READY0 + p], want)
      for _, id in ipairs(popped) do
        local raw = rcall("HGET", K[META], id)
        local m = parse(raw)
        if m ~= nil and m.st == "r" then
          forget(id)
        elseif raw and m == nil then
          bury_garbage(K, id, "corrupt or missing job metadata", now)
        else
          drop_stale(K, id, raw)
        end
      end
      drop_head(K[READY0 + p], #popped)
      count(K, "pop:" .. p, #popped)
      budget = budget - #popped
      if #popped < want then break end
    end
  end
  if budget == 0 then more = 1 end
else
  local set = K[STATE_SET[st]]
  local page = rcall("ZRANGE", set, 0, size - 1)
  for _, id in ipairs(page) do
    local raw = rcall("HGET", K[META], id)
    local m = parse(raw)
    rcall("ZREM", set, id)
    if m ~= nil and m.st == st then
      forget(id)
    elseif raw and m == nil then
      if st == "x" then forget(id) else bury_garbage(K, id, "corrupt or missing job metadata", now) end
    end
  end
  if #page == size then more = 1 end
end
return record(K, cid, {n, more}, now)

-- Migration: take up to ARGV[2] jobs of one state ("r" in dequeue order, "d" by due time,
-- "x" in death order) into the holding area of one migration (a set under the queue's tag).
-- Ready jobs are taken from the heads of their lists (stale entries dropped on the way).
-- KEYS: the standard key block, then the holding set (EXTRA).  ARGV: state, count, sweep limit.
-- Returns {id, body, record, ...} of the held jobs.
local K = KEYS
local st, want, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
local now = now_s()

local function hold(id, m)
  m.hf, m.st = st, "h"
  rcall("ZADD", K[EXTRA], fmt(rcall("HINCRBY", K[INFO], "seq", 1)), id)
  save(K, id, m)
  rcall("ZREM", K[TTL], id)
  out[#out + 1] = id
  out[#out + 1] = rcall("HGET", K[JOBS], id) or ""
  out[#out + 1] = pack(m)
end

if st == "r" then
  local held, dropped = 0, 0
  for p = PRIO_MAX, PRIO_MIN, -1 do
    while held < want and dropped <= limit do
      local n = want - held
      local popped = head_entries(K[READY0 + p], n)
      for _, id in ipairs(popped) do
        local raw = rcall("HGET", K[META], id)
        local m = parse(raw)
        if m ~= nil and m.st == "r" then
          hold(id, m)
          held = held + 1
        elseif raw and m == nil then
          bury_garbage(K, id, "corrupt or missing job metadata", now)
          dropped = dropped + 1
        else
          drop_stale(K, id, raw)
          dropped = dropped + 1
        end
      end
      drop_head(K[READY0 + p], #popped)
      count(K, "pop:" .. p, #popped)
      if #popped < n then break end
    end
  end
  return out
end

local set = STATE_SET[st]
for _, id in ipairs(rcall("ZRANGE", K[set], 0, want - 1)) do
  local raw = rcall("HGET", K[META], id)
  local m = parse(raw)
  if m == nil then
    if raw and st ~= "x" then
      bury_garbage(K, id, "corrupt or missing job metadata", now)
    else
      rcall("ZREM", K[set], id)
    end
  elseif m.st ~= st then
    rcall("ZREM", K[set], id)
  else
    hold(id, m)
    rcall("ZREM", K[set], id)
  end
end
return out

-- Migration: take up to ARGV[2] jobs of one state ("r" in dequeue order, "d" by due time,
-- "x" in death order) into the holding area of one migration (a set under the queue's tag).
-- KEYS: the standard key block, then the holding set (EXTRA).  ARGV: state, count.
-- Returns {id, body, meta, ...} of the held jobs.
local K = KEYS
local st, count = ARGV[1], tonumber(ARGV[2])
local set = STATE_SET[st]
local out = {}
local now = now_s()
for _, id in ipairs(rcall("ZRANGE", K[set], 0, count - 1)) do
  local m = unpack_meta(rcall("HGET", K[META], id))
  if m == nil then
    if st ~= "x" then bury_garbage(K, id, "corrupt or missing job metadata", now) end
  elseif m.st ~= st then
    rcall("ZREM", K[set], id)
  else
    m.hf, m.st = st, "h"
    save_meta(K, id, m)
    rcall("ZADD", K[EXTRA], fmt(rcall("INCR", K[SEQ])), id)
    rcall("ZREM", K[set], id)
    rcall("ZREM", K[TTL], id)
    out[#out + 1] = id
    out[#out + 1] = rcall("HGET", K[JOBS], id) or ""
    out[#out + 1] = cmsgpack.pack(m)
  end
end
return out

--! flags=no-writes
-- The ready job at ARGV[1] (0 = next to dequeue) in dequeue order: higher priority first, each
-- list from its head. With no stale entries counted, one LLEN per priority and one LINDEX
-- (which walks from the nearer end); otherwise the lists are read from the head in pages,
-- skipping entries whose record does not say ready.
-- KEYS: the standard key block.  ARGV: offset.
-- Returns {id, body, record}, or {} when there are not that many ready jobs.
local K = KEYS
local off = tonumber(ARGV[1])
local stale = tonumber(rcall("HGET", K[INFO], "stale")) or 0
local PAGE = 200
for p = PRIO_MAX, PRIO_MIN, -1 do
  local key = K[READY0 + p]
  local len = rcall("LLEN", key)
  if stale <= 0 then
    if off < len then
      local id = rcall("LINDEX", key, -(off + 1))
      return {id, rcall("HGET", K[JOBS], id) or "", rcall("HGET", K[META], id) or ""}
    end
    off = off - len
  else
    for i = 0, len - 1, PAGE do
      local ids = from_head(key, i, PAGE)
      if #ids == 0 then break end
      local raws = rcall("HMGET", K[META], unpack(ids))
      for j, id in ipairs(ids) do
        local raw = raws[j]
        if raw and string.sub(raw, 1, 2) == "r|" then
          if off == 0 then return {id, rcall("HGET", K[JOBS], id) or "", raw} end
          off = off - 1
        end
      end
    end
  end
end
return {}

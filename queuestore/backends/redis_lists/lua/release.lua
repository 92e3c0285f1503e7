-- Migration: forget held jobs (they are safe in the target).
-- KEYS: the standard key block, then the holding set (EXTRA).  ARGV: job ids.
-- Returns how many were released.
local K = KEYS
local n = 0
for _, id in ipairs(ARGV) do
  if rcall("ZSCORE", K[EXTRA], id) then
    local raw = rcall("HGET", K[META], id)
    if raw == false or string.sub(raw, 1, 2) == "h|" or parse(raw) == nil then
      rcall("HDEL", K[JOBS], id)
      rcall("HDEL", K[META], id)
    end
    rcall("ZREM", K[EXTRA], id)
    n = n + 1
  end
end
return n

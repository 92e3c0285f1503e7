-- Migration: put up to ARGV[1] held jobs back where they came from, at their old positions:
-- the last held first, each ready one pushed back onto the head of its list, so the first
-- held ends up first again.
-- KEYS: the standard key block, then the holding set (EXTRA).  ARGV: count.
-- Returns {restored, still held}.
local K = KEYS
local n, ready = 0, 0
local ids = rcall("ZRANGE", K[EXTRA], -tonumber(ARGV[1]), -1)
for j = #ids, 1, -1 do
  local id = ids[j]
  local m = load(K, id)
  if m ~= nil and m.st == "h" then
    local old = m.hf or "r"
    m.hf = nil
    place(K, id, m, old, true)
    if old == "r" then ready = ready + 1 end
    n = n + 1
  end
  rcall("ZREM", K[EXTRA], id)
end
wake(K, ready)
return {n, rcall("ZCARD", K[EXTRA])}

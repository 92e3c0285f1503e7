-- Dead-letter retention: drop dead jobs, oldest first (death order), while they are dead longer
-- than the retention or the dead set holds more than its limit; at most one batch.
-- KEYS: the standard key block.
-- ARGV: retention (s; 0 = none), limit (jobs; 0 = none), batch, call id ("" = none).
-- Returns how many were dropped; a retried call (same call id) gets the reply of its first run.
local K = KEYS
local retention, limit, batch, cid = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local prior = recalled(K, cid)
if prior then
  if prior.err then return prior end
  return prior[1]
end
local now = now_s()
local size = rcall("ZCARD", K[DEAD])
local n = 0
for _, id in ipairs(rcall("ZRANGE", K[DEAD], 0, batch - 1)) do
  local raw = rcall("HGET", K[META], id)
  local m = parse(raw)
  local dead = raw and (m == nil or m.st == "x") -- garbage is dead too; else a stale entry
  local over = limit > 0 and size > limit
  local old = retention > 0 and (not dead or m == nil or (m.da or now) <= now - retention)
  if not (over or old) then break end
  rcall("ZREM", K[DEAD], id)
  size = size - 1
  if dead then
    rcall("HDEL", K[JOBS], id)
    rcall("HDEL", K[META], id)
    n = n + 1
  end
end
return record(K, cid, {n}, now)[1]

--! flags=no-writes
-- Depth per state. KEYS: the standard key block.
-- Ready counts the entries of the ready lists less the stale ones (counted by the scripts that
-- leave them), and the plain-producer entries not adopted yet.
-- Returns {ready, delayed, in flight, dead}.
local K = KEYS
local ready = 0
for p = PRIO_MIN, PRIO_MAX do ready = ready + rcall("LLEN", K[READY0 + p]) end
local stale = tonumber(rcall("HGET", K[INFO], "stale")) or 0
if stale > 0 then ready = ready - stale end
if ready < 0 then ready = 0 end
ready = ready + rcall("LLEN", K[READY])
return {ready, rcall("ZCARD", K[DELAYED]), rcall("ZCARD", K[INFLIGHT]), rcall("ZCARD", K[DEAD])}

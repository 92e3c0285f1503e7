--! flags=no-writes
-- Depth per state. KEYS: the standard key block.
-- Ready counts the jobs in the ready lists (the kept count: stale entries are not jobs) and the
-- plain-producer entries not adopted yet.
-- Returns {ready, delayed, in flight, dead}.
local K = KEYS
local ready = tonumber(rcall("HGET", K[INFO], "ready")) or 0
if ready < 0 then ready = 0 end
ready = ready + rcall("LLEN", K[READY])
return {ready, rcall("ZCARD", K[DELAYED]), rcall("ZCARD", K[INFLIGHT]), rcall("ZCARD", K[DEAD])}

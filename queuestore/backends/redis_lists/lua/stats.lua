--! flags=no-writes
-- Depth per state. KEYS: the standard key block.
-- Returns {ready, delayed, in flight, dead}.
local K = KEYS
return {rcall("ZCARD", K[READY]), rcall("ZCARD", K[DELAYED]), rcall("ZCARD", K[INFLIGHT]), rcall("ZCARD", K[DEAD])}

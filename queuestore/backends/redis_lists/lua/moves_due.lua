-- Cross-slot moves to recover: the ids in the moving set that went in at least ARGV[1] seconds
-- ago, oldest first, aged by this server's clock (move_out timed them with it: a client whose
-- clock is ahead must not take a move still in flight for an interrupted one, nor one whose
-- clock is behind leave an interrupted move unrecovered).
-- KEYS: the source key block, then the moving set (EXTRA).
-- ARGV: 1 the least age in seconds, 2 the most ids.
-- Returns the ids.
local cutoff = now_s() - tonumber(ARGV[1])
return rcall("ZRANGEBYSCORE", KEYS[EXTRA], "-inf", fmt(cutoff), "LIMIT", 0, tonumber(ARGV[2]))

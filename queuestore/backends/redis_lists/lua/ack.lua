-- Acknowledge leased jobs: they are gone. Out of the in-flight set first, then body and meta.
-- KEYS: the standard key block.  ARGV: pairs of (id, lease token or "" for unguarded).
-- Returns per job: 1 acked, 0 unknown, -1 lease lost (stale token), -2 not in flight.
local K = KEYS
local out = {}
for i = 1, #ARGV, 2 do
  local id, tok = ARGV[i], ARGV[i + 1]
  local m = unpack_meta(rcall("HGET", K[META], id))
  local res = check_lease(m, tok)
  if res == 1 then
    rcall("ZREM", K[INFLIGHT], id)
    rcall("HDEL", K[JOBS], id)
    rcall("HDEL", K[META], id)
  end
  out[#out + 1] = res
end
return out

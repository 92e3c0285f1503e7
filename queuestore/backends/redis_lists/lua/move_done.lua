-- Cross-slot move, step 3 (source): "done" forgets the moved job; "abort" puts it back where
-- it was (same position). Idempotent.
-- KEYS: the source key block, then the moving set (EXTRA).  ARGV: id, "done" | "abort".
-- Returns 1 if it changed something, 0 if there was nothing to do.
local K = KEYS
local id, mode = ARGV[1], ARGV[2]
local m = unpack_meta(rcall("HGET", K[META], id))
if m == nil or m.st ~= "m" then
  rcall("ZREM", K[EXTRA], id)
  return 0
end
if mode == "done" then
  rcall("HDEL", K[JOBS], id)
  rcall("HDEL", K[META], id)
else
  local old = m.hf
  m.hf, m.mt = nil, nil
  place(K, id, m, old, true)
  if old == "r" then wake(K, 1) end
end
rcall("ZREM", K[EXTRA], id)
return 1

-- Cross-slot move, step 3 (source): "done" forgets the moved job; "abort" puts it back where
-- it was (a ready job at its old list entry if that is still there, else at the head). Idempotent.
-- KEYS: the source key block, then the moving set (EXTRA).  ARGV: id, "done" | "abort".
-- Returns 1 if it changed something, 0 if there was nothing to do.
local K = KEYS
local id, mode = ARGV[1], ARGV[2]
local m = load(K, id)
if m == nil or m.st ~= "m" then
  rcall("ZREM", K[EXTRA], id)
  return 0
end
if mode == "done" then
  rcall("HDEL", K[JOBS], id)
  rcall("HDEL", K[META], id)
else
  local old = m.hf
  m.hf, m.mt, m.mk, m.rd = nil, nil, nil, nil
  if old == "r" and m.ep then
    m.ep, m.st = nil, "r" -- its entry is still in the list: live again
    count(K, "stale", -1)
    save(K, id, m)
  else
    m.ep = nil
    place(K, id, m, old, true)
  end
  if old == "r" then wake(K, 1) end
  if old == "r" and m.x then
    rcall("ZADD", K[TTL], fmt(m.x), id)
    due_at(K, m.x)
  end
end
rcall("ZREM", K[EXTRA], id)
return 1

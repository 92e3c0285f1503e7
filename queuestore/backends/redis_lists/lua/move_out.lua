-- Cross-slot move, step 1 (source): take the job out of its state into the moving set,
-- recording where it goes. Idempotent: a job already moving is returned as it is. A ready
-- job's list entry stays where it is (flag ep) until popped, so an abort can reuse it.
-- The move gets a token of its own (ARGV[4], kept with the moving record): the target's receipt
-- is keyed by it, so a later move of the same id into the same target is a new move.
-- KEYS: the source key block, then the moving set (EXTRA).
-- ARGV: id, lease token ("" = unguarded), target queue name ("" = resume: whatever it recorded),
-- move token, redrive ("x": move only a dead job, its retry_count reset to 0 by move_in; a job
-- already moving counts only when it moves to the same target as a redrive).
-- Returns {code, body, record, target, move token}; code 1 ok, 0 unknown, -1 lease lost (or the job
-- was deleted while leased), -4 moving elsewhere.
local K = KEYS
local id, tok, target, mk, redrive = ARGV[1], ARGV[2], ARGV[3], ARGV[4] or "", ARGV[5] == "x"
local m = load(K, id)
if m == nil then
  if lease_deleted(K, tok) then return {-1} end
  return {0}
end
if redrive and not (m.st == "x" or (m.st == "m" and m.rd and m.mt == target)) then return {0} end
if m.st == "m" then
  if target ~= "" and m.mt ~= target then return {-4} end
  return {1, rcall("HGET", K[JOBS], id) or "", pack(m), m.mt, m.mk or ""}
end
if target == "" then return {0} end
if tok ~= "" or m.st == "i" then
  local res = check_lease(K, m, tok)
  if res ~= 1 then return {res} end
elseif m.st ~= "r" and STATE_SET[m.st] == nil then
  return {0}
end
local old = m.st
m.hf, m.mt, m.mk, m.st = old, target, mk, "m"
if redrive then m.rd = 1 end
if old == "r" then m.ep = 1 end
rcall("ZADD", K[EXTRA], fmt(now_s()), id)
save(K, id, m)
unlist(K, id, old)
rcall("ZREM", K[TTL], id)
return {1, rcall("HGET", K[JOBS], id) or "", pack(m), target, mk}

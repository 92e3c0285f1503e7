-- Move a job by id to another queue in the same slot (standalone, or same hash slot) in one step.
-- The job arrives ready at the tail of its priority in the target. Written target first, then
-- the source entry removed, so a prefix is a copy (found by id), never a loss.
-- KEYS: the source key block (1..BLOCK_LEN), then the target key block.
-- ARGV: id, lease token ("" = unguarded), source queue name, call id ("" = none), redrive ("x":
-- move only a dead job, with retry_count reset to 0; absent or "" = any state).
-- Returns: 1 moved, 0 unknown (or not movable), -1 lease lost, -3 id already in the target; a
-- retried call (same call id) gets the reply of its first run. A job missing here but stored in
-- the target is "moved" only when the target's copy came from this queue (else 0: not found);
-- a redrive never counts a job that is not dead here (0).
-- The error "QSMOVED <home>" (nothing moved) when a migration moved the target queue.
local S, T = {}, {}
for i = 1, BLOCK_LEN do S[i] = KEYS[i]; T[i] = KEYS[BLOCK_LEN + i] end
local id, tok, source, cid, redrive = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5] == "x"
local prior = recalled(S, cid)
if prior then
  if prior.err then return prior end
  return prior[1]
end
local home = moved_to(T) if home then return redis.error_reply("QSMOVED " .. home) end
local now = now_s()
local m = load(S, id)
if redrive and (m == nil or m.st ~= "x") then return record(S, cid, {0}, now)[1] end
if m == nil then
  if lease_deleted(S, tok) then return record(S, cid, {-1}, now)[1] end
  local there = load(T, id)
  if there and there.o == source then return record(S, cid, {1}, now)[1] end
  return record(S, cid, {0}, now)[1]
end
if tok ~= "" or m.st == "i" then
  local res = check_lease(S, m, tok)
  if res ~= 1 then return record(S, cid, {res}, now)[1] end
elseif m.st ~= "r" and STATE_SET[m.st] == nil then
  return record(S, cid, {0}, now)[1] -- held by a migration or moving already
end
local old = m.st
if rcall("HEXISTS", T[META], id) == 1 then return record(S, cid, {-3}, now)[1] end
m.t, m.dl, m.av, m.dr, m.da = nil, nil, nil, nil, nil
m.o = source
if redrive then m.rc = 0 end
local body = rcall("HGET", S[JOBS], id)
if body then rcall("HSET", T[JOBS], id, body) end
local woken = catch_up(T, now, true)
place(T, id, m, "r", false)
wake(T, 1 + woken)
unlist(S, id, old)
rcall("ZREM", S[TTL], id)
rcall("HDEL", S[JOBS], id)
rcall("HDEL", S[META], id)
return record(S, cid, {1}, now)[1]

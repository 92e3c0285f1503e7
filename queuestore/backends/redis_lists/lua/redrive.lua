-- Redrive dead jobs: ready again at the tail of their priority, retry_count 0, the dead-letter mark
-- (dead_reason, dead_at) cleared; attempt, last_error and origin kept. Either the given ids (those
-- not dead here are skipped) or one page of the dead set after a cursor (death order).
-- KEYS: the standard key block.
-- ARGV: call id ("" = none), cursor ("" = the ids that follow; else a dead-set score: the page
-- starts after it, "-inf" at the start), page size, id...
-- Returns {redriven, next cursor ("" when the dead set was walked to its end)}; a retried call
-- (same call id) gets the reply of its first run.
local K = KEYS
local cid, cursor, size = ARGV[1], ARGV[2], tonumber(ARGV[3])
local prior = recalled(K, cid)
if prior then return prior end
local now = now_s()
local ids, nxt = {}, ""
if cursor == "" then
  for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  local lo = cursor
  if lo ~= "-inf" then lo = "(" .. lo end
  local page = rcall("ZRANGEBYSCORE", K[DEAD], lo, "+inf", "WITHSCORES", "LIMIT", 0, size)
  for i = 1, #page, 2 do ids[#ids + 1] = page[i] end
  if #ids == size then nxt = page[#page] end
end
local n, woken = 0, catch_up(K, now, false)
for _, id in ipairs(ids) do
  local m = load(K, id)
  if m and m.st == "x" then
    rcall("ZREM", K[DEAD], id)
    m.rc, m.dr, m.da, m.av, m.q = 0, nil, nil, nil, nil
    place(K, id, m, "r", false)
    n = n + 1
  end
end
wake(K, n + woken)
return record(K, cid, {n, nxt}, now)

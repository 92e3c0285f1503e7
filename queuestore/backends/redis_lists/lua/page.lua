--! flags=no-writes
-- One page of a sorted set of the queue (a state, or a holding area), with bodies and metas.
-- KEYS: the set, the jobs hash, the meta hash.
-- ARGV: mode, member or offset, score, count, reverse (1/0).
--   mode "offset": from rank ARGV[2];  "from": from the member ARGV[2] (inclusive; none if absent);
--   "after": after the member ARGV[2] whose score was ARGV[3] (if it left, after that score).
-- Returns {id, score, body ("" if missing), meta ("" if missing), ...}.
local set, jobs, meta = KEYS[1], KEYS[2], KEYS[3]
local mode, ref, score, count, rev = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5] == "1"
local ids
local function by_rank(start)
  if rev then return rcall("ZREVRANGE", set, start, start + count - 1, "WITHSCORES") end
  return rcall("ZRANGE", set, start, start + count - 1, "WITHSCORES")
end
local function rank_of(member)
  if rev then return rcall("ZREVRANK", set, member) end
  return rcall("ZRANK", set, member)
end
if mode == "offset" then
  ids = by_rank(tonumber(ref))
elseif mode == "from" then
  local r = rank_of(ref)
  if not r then return {} end
  ids = by_rank(r)
else
  local r = rank_of(ref)
  local s = rcall("ZSCORE", set, ref)
  if r and s and tonumber(s) == tonumber(score) then
    ids = by_rank(r + 1)
  elseif rev then
    ids = rcall("ZREVRANGEBYSCORE", set, "(" .. score, "-inf", "WITHSCORES", "LIMIT", 0, count)
  else
    ids = rcall("ZRANGEBYSCORE", set, "(" .. score, "+inf", "WITHSCORES", "LIMIT", 0, count)
  end
end
local out = {}
for i = 1, #ids, 2 do
  local id = ids[i]
  out[#out + 1] = id
  out[#out + 1] = ids[i + 1]
  out[#out + 1] = rcall("HGET", jobs, id) or ""
  out[#out + 1] = rcall("HGET", meta, id) or ""
end
return out

--! flags=no-writes
-- One page of a ready list, walking it in dequeue order (head to tail) or reversed, for iter.
-- Positions are counted from the list's origin: the count of entries ever popped from its head
-- (field pop:<p> of the info hash) plus the index from the head, so a cursor survives pops.
-- Only entries whose record says ready are returned (stale entries are skipped).
-- KEYS: the standard key block.
-- ARGV: priority, mode, ref, count, reverse (1/0).
--   mode "offset": from the start of the walk;  "after": after position ARGV[3];
--   "from": from the job id ARGV[3] (its priority is read from its record: ARGV[1] is ignored;
--   a scan of that list, O(N)); nothing if it is not ready.
-- Returns {priority, last position scanned ("" if none), more (1/0), id, body, record, ...}.
local K = KEYS
local p, mode, ref, n, rev = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5] == "1"
if mode == "from" then
  local m = parse(rcall("HGET", K[META], ref))
  if m == nil or m.st ~= "r" then return {-1, "", 0} end
  p = prio(m)
end
local key = K[READY0 + p]
local pops = tonumber(rcall("HGET", K[INFO], "pop:" .. p)) or 0
local len = rcall("LLEN", key)
local i -- index from the head where the page starts
if mode == "offset" then
  if rev then i = len - 1 else i = 0 end
elseif mode == "after" then
  if rev then i = tonumber(ref) - 1 - pops else i = tonumber(ref) + 1 - pops end
  if not rev and i < 0 then i = 0 end
else
  local at = rcall("LPOS", key, ref, "RANK", -1)
  if not at then return {p, "", 0} end
  i = len - 1 - at
end
local ids = {}
if rev then
  if i >= len then i = len - 1 end
  if i >= 0 then
    local lo = math.max(0, i - n + 1)
    ids = rcall("LRANGE", key, -(i + 1), -(lo + 1))
  end
else
  ids = from_head(key, i, n)
end
local out = {p, "", 0}
if #ids == 0 then return out end
if rev then out[2] = pops + i - #ids + 1 else out[2] = pops + i + #ids - 1 end
if #ids == n then out[3] = 1 end
local raws = hmget(K[META], ids) -- a page may hold more ids than one command takes unpacked
local bodies = hmget(K[JOBS], ids)
for j, id in ipairs(ids) do
  local raw = raws[j]
  if raw and string.sub(raw, 1, 2) == "r|" then
    out[#out + 1] = id
    out[#out + 1] = bodies[j] or ""
    out[#out + 1] = raw
  end
end
return out

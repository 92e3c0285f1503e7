-- At open: make sure the keys of this queue hold this layout (or nothing yet), then mark them.
-- Never misreads another layout: the types of the keys, the marker (field `layout` of the info
-- hash) and the key `seq` of the 0.1 sorted-set layout are checked.
-- KEYS: the standard key block, then the 0.1 layout's sequence key (EXTRA).  ARGV: none.
-- Returns "" when the keys are ours (or none exist), else a description of what was found.
local K = KEYS
local function kind(i) return rcall("TYPE", K[i])["ok"] end
if kind(JOBS) == "stream" then return "the redis-streams layout (" .. K[JOBS] .. " is a stream)" end
if kind(READY) == "zset" or kind(EXTRA) == "string" then
  return "the redis-lists 0.1 sorted-set layout (" .. K[READY] .. " is a " .. kind(READY) .. ", " ..
    K[EXTRA] .. " is a " .. kind(EXTRA) .. ")"
end
local want = {[JOBS] = "hash", [META] = "hash", [READY] = "list", [DELAYED] = "zset", [INFLIGHT] = "zset",
  [DEAD] = "zset", [TTL] = "zset", [INFO] = "hash", [WAKE] = "list", [IDEM] = "zset",
  [CALLS] = "hash", [CALLTIMES] = "zset", [GONE] = "zset"}
for p = PRIO_MIN, PRIO_MAX do want[READY0 + p] = "list" end
for i = 1, BLOCK_LEN do
  local t = kind(i)
  if t ~= "none" and t ~= want[i] then
    return "an unknown layout (" .. K[i] .. " is a " .. t .. ", this layout keeps a " .. want[i] .. " there)"
  end
end
local marker = rcall("HGET", K[INFO], "layout")
if marker then
  if marker ~= LAYOUT_NAME then return "the layout " .. marker end
  return ""
end
if rcall("HLEN", K[META]) > 0 or rcall("HLEN", K[JOBS]) > 0 then
  return "job records without a layout marker (an older redis-lists layout)"
end
rcall("HSET", K[INFO], "layout", LAYOUT_NAME)
return ""

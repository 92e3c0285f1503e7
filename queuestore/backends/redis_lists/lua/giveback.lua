-- A cancelled dequeue: the jobs its lease call (found by its call id, the token prefix) leased
-- and that are still leased under its tokens go back to the head of their ready lists, in the
-- order they were leased, with their attempt counts as before (an attempt nobody saw is no
-- attempt). Then the call is recorded as having leased nothing, so a lease call that reaches
-- the server only now leases nothing either.
-- With no call id, the jobs named (a coalesced caller's share of a lease call) are given back
-- the same way, and nothing is recorded.
-- KEYS: the standard key block.
-- ARGV: the call id (token prefix) of the dequeue, or "" then pairs of (job id, lease token).
-- Returns the number of jobs given back.
local K = KEYS
local cid = ARGV[1]
local now = now_s()
local ids, toks = {}, {}
if cid ~= "" then
  local rec = rcall("HGET", K[CALLS], cid)
  if rec then
    local ok, v = pcall(cjson.decode, rec)
    if ok and type(v) == "table" and type(v.ids) == "table" then ids = v.ids end
  end
  for j = 1, #ids do toks[j] = cid .. j end
else
  for i = 2, #ARGV, 2 do
    ids[#ids + 1] = ARGV[i]
    toks[#toks + 1] = ARGV[i + 1]
  end
end
local n = 0
for j = #ids, 1, -1 do
  local id = ids[j]
  local m = load(K, id)
  if m and m.st == "i" and m.t == toks[j] then
    m.t, m.dl = nil, nil
    m.a = math.max((m.a or 1) - 1, 0)
    if m.a == 0 then m.sa = nil end
    rcall("ZREM", K[INFLIGHT], id)
    place(K, id, m, "r", true)
    n = n + 1
  end
end
wake(K, n)
if cid ~= "" then record(K, cid, {dl = "0", ids = {}}, now) end
return n

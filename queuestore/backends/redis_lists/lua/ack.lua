-- Acknowledge leased jobs: they are gone. The record (the truth) first, then the body, then the
-- in-flight entry (a prefix left by an error is an acked job; the sweep drops its in-flight entry).
-- KEYS: the key block up to the gone set (no ready lists).
-- ARGV: call id ("" = none), then the n job ids, then their n guards in the same order: ""
-- acts on the current lease (unguarded); otherwise the header a lease holder's record starts
-- with, "i|<attempt>|<lease token>|" (a guard without the attempt is checked by its token).
-- Returns "#" and a character per job: "1" acked, "0" unknown (or named again in the call), "L"
-- lease lost (stale token, or the job was deleted while leased), "N" not in flight; a retried
-- call (same call id) gets the reply of its first run.
local K, A = KEYS, ARGV
local cid = A[1]
local prior = recalled(K, cid, true)
if type(prior) == "table" and not prior.err then -- statuses recorded as JSON (none or an older record)
  prior = #prior == 0 and "#" or packed_statuses(prior) or redis.error_reply("QSUNKNOWN call record is unreadable")
end
if prior then return prior end
local n = (#A - 1) / 2
local raws = nil
if n <= BULK then
  raws = rcall("HMGET", K[META], unpack(A, 2, n + 1))
else -- more ids than one command takes unpacked
  raws = {}
  for i = 2, n + 1, BULK do
    local part = rcall("HMGET", K[META], unpack(A, i, math.min(i + BULK - 1, n + 1)))
    for k = 1, #part do raws[#raws + 1] = part[k] end
  end
end
local find, match = string.find, string.match
local out, acked = {"#"}, 0
for j = 1, n do
  local guard, raw, res = A[n + j + 1], raws[j], "0"
  if raw and guard ~= "" and find(raw, guard, 1, true) == 1 then
    res = "1" -- the holder's lease: state, attempt and token as it got them
  elseif raw == false then
    if guard ~= "" and lease_deleted(K, match(guard, "^i|[^|]*|(.*)|$") or "") then res = "L" end
  else
    local st, t = match(raw, "^(%a)|%d*|([^|]*)|")
    if st == nil then
      res = "0"
    elseif guard ~= "" and (st ~= "i" or t ~= match(guard, "^i|[^|]*|(.*)|$")) then
      res = "L"
    elseif st ~= "i" then
      res = "N"
    else
      res = "1"
    end
  end
  if res == "1" then acked = acked + 1 end
  out[j + 1] = res
end
if acked > 0 then
  local gone = nil -- nil: every id of the call
  if acked < n then
    gone = {}
    for j = 1, n do
      if out[j + 1] == "1" then gone[#gone + 1] = A[j + 1] end
    end
  end
  local deleted = 0
  if gone then
    for i = 1, #gone, BULK do deleted = deleted + rcall("HDEL", K[META], unpack(gone, i, math.min(i + BULK - 1, #gone))) end
  else
    for i = 2, n + 1, BULK do deleted = deleted + rcall("HDEL", K[META], unpack(A, i, math.min(i + BULK - 1, n + 1))) end
  end
  if deleted < acked then -- an id named twice: its first ack counts, the others found it unknown
    local seen = {}
    for j = 1, n do
      if out[j + 1] == "1" then
        local id = A[j + 1]
        if seen[id] then out[j + 1] = "0" else seen[id] = true end
      end
    end
  end
  if gone then
    bulk("HDEL", K[JOBS], gone)
    bulk("ZREM", K[INFLIGHT], gone)
  else
    for i = 2, n + 1, BULK do
      local last = math.min(i + BULK - 1, n + 1)
      rcall("HDEL", K[JOBS], unpack(A, i, last))
      rcall("ZREM", K[INFLIGHT], unpack(A, i, last))
    end
  end
end
out = table.concat(out)
if cid == "" then return out end
return record(K, cid, out, now_s())

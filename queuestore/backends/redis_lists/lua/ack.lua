-- Acknowledge leased jobs: they are gone. The record (the truth) first, then the body, then the
-- in-flight entry (a prefix left by an error is an acked job; the sweep drops its in-flight entry).
-- KEYS: the key block up to the gone set (no ready lists).
-- ARGV: call id ("" = none), then pairs of (id, lease token or "" for unguarded).
-- Returns per job: 1 acked, 0 unknown, -1 lease lost (stale token, or the job was deleted while
-- leased), -2 not in flight; a retried call (same call id) gets the reply of its first run.
local K = KEYS
local cid = ARGV[1]
local prior = recalled(K, cid)
if prior then return prior end
local ids = {}
for i = 2, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
local raws = rcall("HMGET", K[META], unpack(ids))
local out, gone, done = {}, {}, {}
for j, id in ipairs(ids) do
  local tok, raw, res = ARGV[2 * j + 1], raws[j], 0
  if raw == false and lease_deleted(K, tok) then
    res = -1
  elseif raw and not done[id] then
    local st, t = string.match(raw, "^(%a)|%d*|([^|]*)|")
    if st == nil then
      res = 0
    elseif tok ~= "" and (st ~= "i" or t ~= tok) then
      res = -1
    elseif st ~= "i" then
      res = -2
    else
      res = 1
      done[id] = true
      gone[#gone + 1] = id
    end
  end
  out[j] = res
end
if #gone > 0 then
  bulk("HDEL", K[META], gone)
  bulk("HDEL", K[JOBS], gone)
  bulk("ZREM", K[INFLIGHT], gone)
end
if cid == "" then return out end
return record(K, cid, out, now_s())

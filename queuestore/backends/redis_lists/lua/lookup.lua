--! flags=no-writes
-- Look jobs up by id, in any state (read only; ARGV holds at most one batch of ids).
-- The record is the truth (as enqueue.lua checks): a job is stored when its record parses,
-- also when it is held by a migration ("h") or on its way to another slot ("m"). A waiting
-- job past its TTL reads as gone: it can no longer be delivered and the next sweep drops it.
-- KEYS: the key block up to IDEM (no ready lists).  ARGV: job ids.
-- Returns per id {status, body ("" if missing), record}: status 0 not stored, 1 stored,
-- 2 garbage (a record that does not parse).
local K = KEYS
local now = now_s()
local out = {}
for _, id in ipairs(ARGV) do
  local raw = rcall("HGET", K[META], id)
  local status = 0
  if raw then
    local m = parse(raw)
    if m == nil then
      status = 2
    else
      status = 1
      local ttl = tonumber(m.x)
      if (m.st == "r" or m.st == "d") and ttl and ttl <= now then status = 0 end
    end
  end
  out[#out + 1] = status
  if status == 0 then
    out[#out + 1] = ""
    out[#out + 1] = ""
  else
    out[#out + 1] = rcall("HGET", K[JOBS], id) or ""
    out[#out + 1] = raw
  end
end
return out

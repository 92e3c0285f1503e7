--! flags=no-writes
-- streams/lookup: look jobs up by id, in any state (read only; get_jobs). Each id is resolved
-- through the index (idx) to its place. A job is stored exactly when enqueueing its id again
-- would be a no-op (enqueue.lua's test), except a waiting job past its TTL: it can no longer be
-- delivered and the next sweep drops it, so it reads as gone.
-- KEYS: 1 stream, 2 idx, 3 delayed, 4 parked bodies, 5 parked meta, 6 ttl, 7 dead, 8 counters
--       (unused), 9 leases, 10-11 call records (unused)
-- ARGV: 1 group (the backend's own: its pending entries are looked at first), 2.. ids
-- Times are the server's (TIME).
-- Returns one reply per id:
--   {}                                        not stored (acked, expired, never enqueued)
--   {"ready", fields}                         a stream entry no group has pending
--   {"in_flight", fields, group, consumer, entry id, deliveries, idle ms, deadline ms | false}
--   {"delayed", body | false, meta | false, due ms | false}
--   {"dead", fields}
--   {"held", body | false, meta | false}      held by a migration (meta.s: the state held from)
--   {"moving", body | false, meta | false}    a cross-slot move under way (meta.s: state it left)
--   {"unknown", index value}                  an index value this script does not know
local mine = ARGV[1]

local function waiting_expired(x)
  local t = num(x)
  return t > 0 and t <= now
end

-- the group (ours first) that has the entry pending, and its XPENDING row
local function pending(eid)
  local gs = groups()
  for pass = 1, 2 do
    for _, g in ipairs(gs) do
      if (g.name == mine) == (pass == 1) then
        local p = rcall("XPENDING", S, g.name, eid, eid, 1)
        if p[1] then return g.name, p[1] end
      end
    end
  end
  return nil
end

local function entry(key, eid)
  local e = rcall("XRANGE", key, eid, eid)
  return e[1] and e[1][2]
end

local function lookup(jid)
  local loc = rcall("HGET", I, jid)
  if not loc then return {} end
  if string.match(loc, "^%d") then
    local f = entry(S, loc)
    if not f then return {} end -- deleted behind our back: enqueue would take the id again
    local g, p = pending(loc)
    if g then
      local deadline = lease_score(g, loc, p[2])
      return {"in_flight", f, g, p[2], loc, p[4], p[3], deadline or false}
    end
    if waiting_expired(tomap(f).x) then return {} end
    return {"ready", f}
  end
  local tag = string.sub(loc, 1, 1)
  if loc == "D" then
    local body = rcall("HGET", PB, jid)
    if not body then return {} end -- promote() forgets such an index entry
    local meta = rcall("HGET", PM, jid)
    local ok, m = pcall(cjson.decode, meta or "{}")
    if ok and type(m) == "table" and waiting_expired(m.x) then return {} end
    return {"delayed", body, meta or false, rcall("ZSCORE", Z, jid) or false}
  elseif tag == "X" then
    local f = entry(D, string.sub(loc, 2))
    if not f then return {} end
    return {"dead", f}
  elseif tag == "H" or loc == "M" then
    return {tag == "H" and "held" or "moving", rcall("HGET", PB, jid) or false, rcall("HGET", PM, jid) or false}
  end
  return {"unknown", loc}
end

local out = {}
for i = 2, #ARGV do out[#out + 1] = lookup(ARGV[i]) end
return out

-- queuestore streams library, a part after _lib.lua: a leased job as a settle op or an ack
-- finds it (by its lease token, or by id) and releases it.

-- drop this group's claim on an entry; delete the entry once no group needs it (and the
-- take's consumer that held it, once nothing is pending under it)
local function release(eid, jid, group, keep_index, owner)
  rcall("XACK", S, group, eid)
  finish(eid, not keep_index and jid or nil, group)
  close_take(group, owner)
end

-- find a leased job: status, entry id, deliveries, fields map. A token (entry id + delivery
-- count) must name the current pending entry of its group; a bare id acts on its current lease.
local function leased(jid, group, consumer, eid, dtok, bury)
  local guarded = eid ~= ""
  if not guarded then
    local loc = rcall("HGET", I, jid)
    if not loc or not string.match(loc, "^%d") then return 0 end
    eid = loc
  elseif not bury and not rcall("HGET", I, jid) then
    -- deleted while leased (dlq delete): its lease record stays until the deadline
    if lease_score(group, eid, consumer) then return -1 end
    return 0
  end
  local p = pending(group, eid, eid, 1)
  local d = p[1] and tonumber(p[1][4])
  if not d and guarded and rcall("HGET", I, jid) == eid then
    -- not pending: a token naming an entry that is still there holds no lease on it (someone
    -- forged or garbled it); one whose entry is gone names a job deleted while pending and
    -- released by a reclaimer: the job is gone
    if #rcall("XRANGE", S, eid, eid) > 0 then return -1 end
    rcall("HDEL", I, jid); rcall("ZREM", T, jid)
    return 0
  end
  if not d or (guarded and tostring(d) ~= dtok) then return guarded and -1 or 0 end
  local e = rcall("XRANGE", S, eid, eid)
  if #e == 0 then
    -- deleted while pending (XDEL/XTRIM behind our back): counted, released, never retried
    rcall("XACK", S, group, eid); rcall("ZREM", L, group .. US .. eid); rcall("HINCRBY", C, "lost", 1)
    if rcall("HGET", I, jid) == eid then rcall("HDEL", I, jid) end
    return 0
  end
  local m = tomap(e[1][2])
  -- a token works for its own job only: one of another job's entry holds no lease on this one
  if guarded and jid ~= "" and m.j and m.j ~= jid then return -1 end
  return 1, eid, d, m, p[1][2]
end

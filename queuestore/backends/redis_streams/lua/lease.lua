-- streams/lease: the two halves of a take sent as one transaction around a plain XREADGROUP, so
-- the entries never pass through Lua:
--   MULTI; lease "before";
--   XREADGROUP GROUP <group> @<call id>:<consumer> COUNT n STREAMS <stream> >;
--   lease "after"; EXEC
-- The take reads as a consumer of its own ("@<call id>:<consumer>") and "after" records one
-- lease for all it read ("group<US>@<call id>:<consumer>" -> deadline ms in the leases zset;
-- see _lib.lua); and "sift", for entries such a take read that are not the group's to lease.
-- KEYS: 1 stream, 2 idx, 3 delayed, 4 parked bodies, 5 parked meta, 6 ttl, 7 dead, 8 counters,
--       9 leases, 10 call records, 11 call record times
-- ARGV: 1 mode ("before" | "after" | "sift"), 2 group, 3 consumer ("@<call id>:<consumer>"),
--       4 call id argument, 5 lease ms, 6 claim_count, 7 batch, 8 queue, 9 retention (0/1),
--       then sift: entry ids
-- before -> 0: what is due is made ready first, as take.lua does (expired leases, due delayed
--   jobs, waiting jobs past their TTL), so the read sees it in ready order.
-- after -> {lease deadline ms, server now ms}, the take recorded under its call id ({t =
--   deadline, c = consumer}: a retry of the call, take.lua, returns what is pending under the
--   consumer); or {false} when the read took nothing (the consumer it made goes) or the call was
--   handed back or taken by a retry before it ran (a record exists): what it read goes back to
--   the tail, counters unchanged, and the consumer goes.
-- sift -> {{entry id, 1, fields}...}: of the given entries (read by this take, delivered once),
--   those to lease; an entry tagged for another group is released to it and one past its TTL
--   is dropped and counted, as take.lua's read does.
local mode, group, consumer, cid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local lease_ms, claim_count, batch = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
queue, retention = ARGV[8], ARGV[9] == "1"

if mode == "before" then
  reclaim_due(claim_count)
  promote(batch)
  expire(batch)
  return 0
elseif mode == "after" then
  local prior = recalled(cid)
  local first = rpcall("XPENDING", S, group, "-", "+", 1, consumer)
  if type(first) ~= "table" or first.err then first = {} end
  if prior or #first == 0 then
    for _, p in ipairs(#first > 0 and pending_of(group, consumer) or {}) do
      local eid = p[1]
      local e = rcall("XRANGE", S, eid, eid)
      rcall("XACK", S, group, eid)
      if #e > 0 then
        local m = tomap(e[1][2])
        if #groups() > 1 then m.g = group end
        if m.j and rcall("HGET", I, m.j) == eid then append(m) end
        finish(eid, nil, group)
      end
    end
    rpcall("XGROUP", "DELCONSUMER", S, group, consumer)
    return {false}
  end
  local deadline = now + lease_ms
  rcall("ZADD", L, deadline, group .. US .. consumer)
  record(cid, {t = deadline, c = consumer})
  return {deadline, now}
elseif mode == "sift" then
  local out = {}
  for i = 10, #ARGV do
    local eid = ARGV[i]
    local p = pending(group, eid, eid, 1)
    local e = rcall("XRANGE", S, eid, eid)
    if p[1] and p[1][2] == consumer and #e > 0 then
      local m = tomap(e[1][2])
      if m.g and m.g ~= group then
        rcall("XACK", S, group, eid); finish(eid, nil, group)  -- requeued for another group
      elseif m.x and expired(m) then
        rcall("XACK", S, group, eid); finish(eid, m.j, group); rcall("HINCRBY", C, "expired", 1)
      else
        out[#out + 1] = {eid, p[1][4], e[1][2]}
      end
    end
  end
  close_take(group, consumer)
  return out
end
return redis.error_reply("ERR unknown lease mode " .. tostring(mode))

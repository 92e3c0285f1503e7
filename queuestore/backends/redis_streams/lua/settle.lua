-- streams/settle: what a lease holder (or an operator, by bare id) does with a job.
-- KEYS: 1 stream, 2 idx, 3 delayed, 4 parked bodies, 5 parked meta, 6 ttl, 7 dead, 8 counters,
--       9 leases, 10 call records, 11 call record times;
--       move only: 12 target stream, 13 target idx, 14 target ttl, 15 target counters,
--       16 target parked meta, 17 target dead (read only: where a retried move's copy is),
--       18 target delayed, 19 target parked bodies, 20 target leases, 21 target migration record
-- ARGV: 1 op, 2 call id ("" = not recorded), 3 retention (0/1), 4 queue, 5 target queue (move) or "",
--       then per job: id, group, consumer, entry id, deliveries (the lease token; "" = unguarded)
--       and the op's own arguments (a batch ack is ack.lua).
-- ops: nack (requeue 0/1, delay_ms (-1: from the backoff that follows), error, [backoff base
--      s, factor, max s, jitter spread]) -> {status, new state};
--      extend (lease ms) -> {status, deadline ms}; bury (placeholder body, reason) -> {status};
--      move -> {status}; moveout (11: "dead" = a redrive: dead letters only, why and at kept parked)
--      -> {status, fields}; moved -> {status};
--      giveback (6: the call id of a dequeue or "", 7: its group, then with "": entry id,
--      deliveries pairs) -> {entries handed back}
-- status: 1 ok, 0 not found / not in flight, -1 lease lost.
-- move: the error "QSMOVED <home>" (nothing moved, not recorded) when a migration sealed the target.
-- Every reply is recorded under the call id: a retried call gets it without acting again.
-- Times (lease deadlines, due times, dead-letter times) are the server's (TIME).
local op, cid, target = ARGV[1], ARGV[2], ARGV[5]
retention, queue = ARGV[3] == "1", ARGV[4]
local prior = recalled(cid)
if prior then return prior end

-- the op; its reply is recorded under the call id (below)
local function main()
local jid, group, consumer, tok_eid, dtok = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]

if op == "nack" or op == "bury" or op == "extend" then
  local st, eid, d, m, owner = leased(jid, group, consumer, tok_eid, dtok, op == "bury")
  if st ~= 1 then return {st} end
  if op == "extend" then
    local deadline = now + tonumber(ARGV[11])
    rcall("ZADD", L, deadline, group .. US .. eid)
    if is_take(owner) then
      local mark = take_mark(group, owner)
      local kept = tonumber(rcall("ZSCORE", L, mark))
      if not kept or kept < deadline + TAKE_MARK_GRACE_MS then
        rcall("ZADD", L, deadline + TAKE_MARK_GRACE_MS, mark)
      end
    end
    return {1, deadline}
  end
  local r, mx, a = num(m.r), num(m.m), num(m.a)
  m.j = (jid ~= "" and jid) or m.j or ("garbage-" .. eid)
  jid = m.j
  local state
  if op == "bury" then
    m.b = ARGV[11]; m.r = r + d - 1; m.a = a + d
    dead_letter(m, ARGV[12], group); state = "dead"
  else
    local requeue, delay, err = ARGV[11] == "1", tonumber(ARGV[12]), ARGV[13]
    if err ~= "" then m.e = err end
    m.a = a + d
    if delay < 0 then
      -- retry backoff: min(max, base * factor ^ retry_count before this nack) * spread
      local base, factor, most, spread = tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16]), tonumber(ARGV[17])
      delay = math.floor(math.min(most, base * factor ^ (r + d - 1)) * spread * 1000)
    end
    if requeue and r + d <= mx then
      catch_up(false)
      m.r = r + d
      local tag = (#groups() > 1) and group or nil  -- fan-out: the retry is this group's only
      if delay > 0 then
        park(jid, m.b, {r = tostring(m.r), m = m.m, a = tostring(m.a), x = m.x, e = m.e, o = m.o, g = tag}, now + delay)
        state = "delayed"
      else
        m.g = tag
        append(m)
        state = "ready"
      end
    else
      m.r = r + d - 1
      dead_letter(m, err ~= "" and err or (requeue and "max retries exceeded" or "rejected"), group)
      state = "dead"
    end
    rcall("HINCRBY", C, "nacked", 1)
  end
  release(eid, jid, group, true, owner)
  return {1, state}
end

-- move / moveout: take the job out of whatever state it is in (leased: guarded as ack);
-- returns status, fields, remover, and the state it is in (+ due ms when delayed)
local only_dead = op == "moveout" and ARGV[11] == "dead"
local function take_out()
  local loc = rcall("HGET", I, jid)
  if not loc then
    -- deleted while leased (dlq delete): the holder's lease record stays until the deadline
    if tok_eid ~= "" and lease_score(group, tok_eid, consumer) then return -1 end
    return 0
  end
  if only_dead and string.sub(loc, 1, 1) ~= "X" and loc ~= "M" then return 0 end
  if tok_eid ~= "" or string.match(loc, "^%d") then
    local p = string.match(loc, "^%d") and pending(group, loc, loc, 1) or {}
    if tok_eid ~= "" or #p > 0 then
      local st, eid, d, m, owner = leased(jid, group, consumer, tok_eid, dtok, op == "bury")
      if st ~= 1 then return st end
      m.r = num(m.r) + d - 1; m.a = num(m.a) + d
      return 1, m, function() release(eid, jid, group, true, owner) end, "in_flight"
    end
    local e = rcall("XRANGE", S, loc, loc)
    if #e == 0 then rcall("HDEL", I, jid); return 0 end
    return 1, tomap(e[1][2]), function() rcall("XDEL", S, loc) end, "ready"
  elseif loc == "D" or loc == "M" then
    local m = decode_object(rcall("HGET", PM, jid) or "{}") or {}  -- garbage meta: no counters
    m.b = rcall("HGET", PB, jid)
    if not m.b then rcall("HDEL", I, jid); return 0 end
    if loc == "M" then
      if only_dead and m.s ~= "dead" then return 0 end
      return 1, m, function() unpark(jid) end, m.s or "ready", m.due
    end
    return 1, m, function() unpark(jid) end, "delayed", rcall("ZSCORE", Z, jid)
  elseif string.sub(loc, 1, 1) == "X" then
    local did = string.sub(loc, 2)
    local e = rcall("XRANGE", D, did, did)
    if #e == 0 then rcall("HDEL", I, jid); return 0 end
    return 1, tomap(e[1][2]), function() rcall("XDEL", D, did) end, "dead"
  end
  return 0
end

-- whether the target's copy of the job came from this queue (a retried move that had
-- finished); a job of the same id that the target got any other way is not ours to report
local function moved_here(TS, TI, TPM, TD)
  local loc = rcall("HGET", TI, jid)
  if not loc then return false end
  local fields
  if string.match(loc, "^%d") then
    local e = rcall("XRANGE", TS, loc, loc)
    fields = e[1] and tomap(e[1][2])
  elseif string.sub(loc, 1, 1) == "X" then
    local did = string.sub(loc, 2)
    local e = rcall("XRANGE", TD, did, did)
    fields = e[1] and tomap(e[1][2])
  else
    fields = decode_object(rcall("HGET", TPM, jid) or "{}")
  end
  return type(fields) == "table" and fields.o == queue
end

-- run f(...) on the target queue: the library's key names, groups and queue name point at the
-- target's while it runs (same-slot move: its keys are KEYS[12..20])
local function on_target(f, ...)
  local mine = {S, I, Z, PB, PM, T, D, C, L, queue}
  S, I, Z, PB, PM, T, D, C, L = KEYS[12], KEYS[13], KEYS[18], KEYS[19], KEYS[16], KEYS[14], KEYS[17], KEYS[15], KEYS[20]
  queue, gs_cache = target, nil
  f(...)
  S, I, Z, PB, PM, T, D, C, L, queue = unpack(mine)
  gs_cache = nil
end

if op == "move" then
  local home = moved_to(KEYS[21]) if home then return redis.error_reply("QSMOVED " .. home) end
  local TS, TI, TT, TC = KEYS[12], KEYS[13], KEYS[14], KEYS[15]
  local st, m, remove = take_out()
  if st == 0 and tok_eid == "" and moved_here(TS, TI, KEYS[16], KEYS[17]) then return {1} end  -- a retried move
  if st ~= 1 then return {st} end
  m.j = jid; m.o = queue; m.why = nil; m.at = nil; m.g = nil
  if not rcall("HGET", TI, jid) then
    on_target(catch_up, true)
    rcall("HSET", TI, jid, rcall("XADD", TS, "*", unpack(flat(m))))
    if num(m.x) > 0 then rcall("ZADD", TT, m.x, jid) end
    rcall("HINCRBY", TC, "enqueued", 1)
  end
  remove()
  rcall("ZREM", T, jid); rcall("HDEL", I, jid)
  return {1}
elseif op == "moveout" then
  -- step 1 of a cross-slot move: park the job under "M" (re-running returns the same record);
  -- the parked meta keeps the state it left (s, and due when delayed) for lookups by id
  local st, m, remove, from, due = take_out()
  if st ~= 1 then return {st} end
  local why, at = m.why, m.at  -- a redrive keeps them parked: it may have to put the job back
  m.o = queue; m.why = nil; m.at = nil; m.j = jid; m.g = nil
  if rcall("HGET", I, jid) ~= "M" then
    remove() -- first: for a delayed job it unparks, which must not erase the record below
    rcall("HSET", PB, jid, m.b)
    local keep = {r = tostring(m.r or "0"), m = m.m, a = tostring(m.a or "0"), x = m.x, e = m.e, o = m.o, s = from, due = due}
    if only_dead then keep.why = why; keep.at = at end
    rcall("HSET", PM, jid, cjson.encode(keep))
    rcall("ZREM", Z, jid); rcall("ZREM", T, jid)
    rcall("HSET", I, jid, "M")
  end
  return {1, flat(m)}
elseif op == "moved" then
  -- step 2: the target has it; forget the parked copy
  if rcall("HGET", I, jid) ~= "M" then return {0} end
  rcall("HDEL", PB, jid); rcall("HDEL", PM, jid); rcall("HDEL", I, jid)
  return {1}
elseif op == "giveback" then
  -- a cancelled dequeue: whatever its take leased (found by its call id) goes back to the tail
  -- of the stream with the same counters (an attempt nobody saw is no attempt); a take that
  -- has not run yet finds an empty record and leases nothing
  local take_id, g = ARGV[6], ARGV[7]
  local leased = {}
  if take_id ~= "" then
    local rec = decode_object(rcall("HGET", CR, take_id))
    if rec and is_take(rec.c) then
      -- a take of its own consumer (lease.lua): what is pending under it
      for _, p in ipairs(pending_of(g, rec.c)) do leased[#leased + 1] = {p[1], p[4]} end
    elseif rec and type(rec.ids) == "string" then
      -- entries delivered once, named in one string (see take.lua)
      for id in string.gmatch(rec.ids, "[^,]+") do leased[#leased + 1] = {id, 1} end
    else
      leased = rec and type(rec.e) == "table" and rec.e or {}
    end
  else
    for i = 8, #ARGV, 2 do leased[#leased + 1] = {ARGV[i], ARGV[i + 1]} end
  end
  local n = 0
  for _, le in ipairs(leased) do
    local eid, d = le[1], tonumber(le[2]) or 1
    local p = pending(g, eid, eid, 1)
    local e = rcall("XRANGE", S, eid, eid)
    if p[1] and tonumber(p[1][4]) == d and #e > 0 then
      local m = tomap(e[1][2])
      m.r = num(m.r) + d - 1; m.a = num(m.a) + d - 1
      if #groups() > 1 then m.g = g end
      if m.j and rcall("HGET", I, m.j) == eid then append(m) end
      release(eid, m.j, g, true, p[1][2])
      n = n + 1
    end
  end
  if take_id ~= "" then record(take_id, {t = 0, e = {}}) end
  return {n}
end
return redis.error_reply("ERR unknown settle op " .. tostring(op))
end

local reply = main()
if type(reply) == "table" and reply.err then return reply end
return record(cid, reply)

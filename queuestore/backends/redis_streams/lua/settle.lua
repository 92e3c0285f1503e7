-- streams/settle: what a lease holder (or an operator, by bare id) does with a job.
-- KEYS: 1 stream, 2 idx, 3 delayed, 4 parked bodies, 5 parked meta, 6 ttl, 7 dead, 8 counters,
--       9 leases, 10 call records, 11 call record times;
--       move only: 12 target stream, 13 target idx, 14 target ttl, 15 target counters,
--       16 target parked meta, 17 target dead (read only: where a retried move's copy is),
--       18 target delayed, 19 target parked bodies, 20 target leases, 21 target migration record
-- ARGV: 1 op, 2 call id ("" = not recorded), 3 retention (0/1), 4 queue, 5 target queue (move) or "",
--       then per job: id, group, consumer, entry id, deliveries (the lease token; "" = unguarded)
--       and the op's own arguments; acks: runs of jobs whose tokens share group, consumer and
--       deliveries, each "group, consumer, deliveries, k" then k pairs "entry id, job id" (a bare
--       id: consumer, deliveries and entry id "").
-- ops: acks -> {statuses: one character per job, "1" ok, "0" not
--      found / not in flight, "L" lease lost}; nack (requeue 0/1, delay_ms (-1: from
--      the backoff that follows), error, [backoff base s, factor, max s, jitter spread]) -> {status, new state};
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

-- drop this group's claim on an entry; delete the entry once no group needs it (and the
-- take's consumer that held it, once nothing is pending under it)
local function release(eid, jid, group, keep_index, owner)
  rcall("XACK", S, group, eid)
  finish(eid, not keep_index and jid or nil, group)
  close_take(group, owner)
end

-- find a leased job: status, entry id, deliveries, fields map. A token (entry id + delivery
-- count) must name the current pending entry of its group; a bare id acts on its current lease.
local function leased(jid, group, consumer, eid, dtok)
  local guarded = eid ~= ""
  if not guarded then
    local loc = rcall("HGET", I, jid)
    if not loc or not string.match(loc, "^%d") then return 0 end
    eid = loc
  elseif op ~= "bury" and not rcall("HGET", I, jid) then
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

-- whether no entry from id lo on can have been removed: nothing at or after it was ever
-- deleted (XDEL raises the stream's max-deleted-entry-id) and the stream still starts at or
-- before it (trimming removes a prefix). False when the server does not report both (KeyDB).
-- Also returns the stream's XINFO STREAM map.
local function intact(lo)
  if not lo then return false end
  local info = tomap(rcall("XINFO", "STREAM", S))
  local md, first = info["max-deleted-entry-id"], info["first-entry"]
  if type(md) ~= "string" or type(first) ~= "table" or type(first[1]) ~= "string" then return false end
  local a = {idparts(md)}
  local b = {idparts(first[1])}
  local c = {idparts(lo)}
  if not (a[1] and b[1] and c[1]) then return false end
  local function before(x, y) return x[1] < y[1] or (x[1] == y[1] and x[2] < y[2]) end
  return before(a, c) and not before(c, b), info
end

-- whether, once the batch (entries up to hi, just XACKed by group g) is deleted, no entry up to
-- hi is left: every entry the group was delivered was pending before the XACK (the entries up
-- to its last-delivered id, length - lag, counted exactly when the server reports lag, equal
-- its pending count: none was acked and kept), and none up to hi is pending now. Then one XTRIM
-- MINID past hi deletes exactly the batch. g is the group's XINFO GROUPS map, read before the XACK.
local function only_batch_up_to(info, g, group, hi)
  if not (g and g.name == group) then return false end
  local lag, pending, len = tonumber(g.lag), tonumber(g.pending), tonumber(info.length)
  if not (lag and pending and len) or len - lag ~= pending then return false end
  local summary = rcall("XPENDING", S, group)
  return tonumber(summary[1]) == 0 or (type(summary[2]) == "string" and idcmp(hi, summary[2]) < 0)
end

-- the op; its reply is recorded under the call id (below)
local function main()
-- cmd key list..., 4000 list items per command (Lua's unpack limit is ~8000 values)
local function chunked(cmd, key, list, extra)
  for i = 1, #list, 4000 do
    if extra then
      rcall(cmd, key, extra, unpack(list, i, math.min(i + 3999, #list)))
    else
      rcall(cmd, key, unpack(list, i, math.min(i + 3999, #list)))
    end
  end
end

-- whether canonical entry id a (its "-" at da) is below b (at db): ids of one length compare
-- as strings, as do their millisecond parts
local function below(a, da, b, db)
  if da ~= db then return da < db end
  if #a == #b then return a < b end
  local ma, mb = string.sub(a, 1, da), string.sub(b, 1, db)
  if ma ~= mb then return ma < mb end
  return #a < #b
end

-- the position of the "-" of an entry id as the server writes it (no leading zeros), or nil
local function canonical(eid)
  local dp = string.match(eid, "^[1-9]%d*()%-%d+$")
  if dp and (dp + 1 == #eid or string.byte(eid, dp + 1) ~= 48) then return dp end
  return nil
end

local ACK_CHAR = {[1] = "1", [0] = "0", [-1] = "L"}
if op == "acks" then
  -- the runs, read into lists: per job its entry id (E), job id (J) and run (R: group,
  -- consumer, deliveries)
  local gs = (not retention) and groups() or {}
  local only = #gs == 1 and gs[1].name or nil
  local n, E, J, R, runs, all_lean = 0, {}, {}, {}, {}, only ~= nil
  local i, last = 6, #ARGV
  while i <= last do
    local run = {ARGV[i], ARGV[i + 1], ARGV[i + 2]}
    local k = tonumber(ARGV[i + 3])
    if not (k and k >= 1 and i + 3 + 2 * k <= last) then
      return redis.error_reply("ERR malformed acks run at argument " .. i)
    end
    runs[#runs + 1] = run
    if run[1] ~= only or run[3] ~= "1" then all_lean = false end
    for a = i + 4, i + 2 + 2 * k, 2 do
      n = n + 1
      E[n], J[n], R[n] = ARGV[a], ARGV[a + 1], run
    end
    i = i + 4 + 2 * k
  end
  local out, acked, lost = {}, 0, 0
  -- the lean path, for an ack under a token of the stream's only group, of an entry delivered
  -- once, whose job's index points at the token's entry (and the job named once in the call),
  -- entries deleted on ack: the entry is not read, and the writes go in one command per kind
  -- for the call. Any other ack takes the full path, after them (they share no entry).
  local cand, jids = nil, J
  if not all_lean then
    cand, jids = {}, {}
    for c = 1, n do
      if only and R[c][1] == only and R[c][3] == "1" then
        cand[#cand + 1] = c
        jids[#jids + 1] = J[c]
      end
    end
  end
  local locs = {}
  for a = 1, #jids, 4000 do
    for _, loc in ipairs(rcall("HMGET", I, unpack(jids, a, math.min(a + 3999, #jids)))) do
      locs[#locs + 1] = loc
    end
  end
  -- the candidates whose index points at the token's entry, an entry id as the server writes
  -- them; the range of their ids, and whether they come in id order (then no entry, and so no
  -- job, is named twice among them)
  local match, lo, dlo, hi, dhi, sorted = {}, nil, nil, nil, nil, true
  for k = 1, #locs do
    local c = cand and cand[k] or k
    local teid = E[c]
    local dp = locs[k] == teid and canonical(teid)
    if dp then
      match[#match + 1] = c
      if not hi then
        lo, dlo, hi, dhi = teid, dp, teid, dp
      elseif below(hi, dhi, teid, dp) then
        hi, dhi = teid, dp
      else
        sorted = false
        if below(teid, dp, lo, dlo) then lo, dlo = teid, dp end
      end
    end
  end
  -- which of them are pending. On an intact stream (no entry from lo on was ever deleted) each
  -- is still there, and one the group was delivered (at or before its last delivered id) is
  -- pending: nothing acks an entry without deleting it (an ack, nack or reclaim deletes it; a
  -- retry is a new entry), and its count is the one a take gives (1; a claim by the orphan
  -- sweep keeps it). Otherwise the pending rows of the range are read.
  local ok = {}
  local whole, info = intact(lo)
  if whole then
    local ld = gs[1]["last-delivered-id"]
    local dld = string.find(ld, "-", 1, true)
    if not below(ld, dld, hi, dhi) then
      ok = match
    else
      for _, c in ipairs(match) do
        if not below(ld, dld, E[c], canonical(E[c])) then ok[#ok + 1] = c end
      end
    end
  elseif lo then
    local pend = {}
    for _, p in ipairs(pending(only, lo, hi, #match)) do pend[p[1]] = p[4] end
    for _, c in ipairs(match) do
      local d = pend[E[c]]
      if d == 1 then ok[#ok + 1] = c end
    end
  end
  -- a job named more than once in the call takes the full path, each time
  if not (sorted and #match == n) and #ok > 0 then
    local seen, kept = {}, {}
    for c = 1, n do seen[J[c]] = (seen[J[c]] or 0) + 1 end
    for _, c in ipairs(ok) do
      if seen[J[c]] == 1 then kept[#kept + 1] = c end
    end
    ok = kept
  end
  if #ok > 0 then
    local group = only
    local eids, gone = E, J
    if #ok < n then
      eids, gone = {}, {}
      for k, c in ipairs(ok) do eids[k], gone[k] = E[c], J[c] end
    end
    local leases = {}
    for k, eid in ipairs(eids) do leases[k] = group .. US .. eid end
    chunked("XACK", S, eids, group)
    chunked("ZREM", L, leases)
    if whole and only_batch_up_to(info, gs[1], group, hi) then
      -- the batch is the stream's head: one XTRIM frees it node by node
      local ms, seq = idparts(hi)
      rcall("XTRIM", S, "MINID", string.format("%d-%d", ms, seq + 1))
      for _, c in ipairs(ok) do out[c] = 1 end
      acked = acked + #ok
    elseif whole then
      -- every entry is still there: one XDEL for the call
      chunked("XDEL", S, eids)
      for _, c in ipairs(ok) do out[c] = 1 end
      acked = acked + #ok
    else
      -- XDEL per entry says whether it was still there (0: deleted while pending behind our
      -- back: counted lost, reported not found, as leased() does)
      for k, c in ipairs(ok) do
        if rcall("XDEL", S, eids[k]) == 1 then
          out[c] = 1
          acked = acked + 1
        else
          out[c] = 0
          lost = lost + 1
        end
      end
    end
    chunked("HDEL", I, gone)
    if rcall("EXISTS", T) == 1 then chunked("ZREM", T, gone) end
    -- the takes' consumers these were the last pending entries of go (one check per take)
    for _, run in ipairs(runs) do
      if run[1] == group then close_take(group, run[2]) end
    end
  end
  if acked == n then
    if acked > 0 then rcall("HINCRBY", C, "acked", acked) end
    return {string.rep("1", n)}
  end
  for c = 1, n do
    if out[c] == nil then
      local run, jid = R[c], J[c]
      local st, eid, _, _, owner = leased(jid, run[1], run[2], E[c], run[3])
      if st == 1 then
        release(eid, jid, run[1], false, owner)
        acked = acked + 1
      end
      out[c] = st
    end
  end
  if acked > 0 then rcall("HINCRBY", C, "acked", acked) end
  if lost > 0 then rcall("HINCRBY", C, "lost", lost) end
  -- the statuses as one string, a character per job: no number is formatted for the reply
  -- or its call record
  local chars = {}
  for c = 1, n do chars[c] = ACK_CHAR[out[c]] end
  return {table.concat(chars)}
end

local jid, group, consumer, tok_eid, dtok = ARGV[6], ARGV[7], ARGV[8], ARGV[9], ARGV[10]

if op == "nack" or op == "bury" or op == "extend" then
  local st, eid, d, m, owner = leased(jid, group, consumer, tok_eid, dtok)
  if st ~= 1 then return {st} end
  if op == "extend" then
    local deadline = now + tonumber(ARGV[11])
    rcall("ZADD", L, deadline, group .. US .. eid)
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
      local st, eid, d, m, owner = leased(jid, group, consumer, tok_eid, dtok)
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

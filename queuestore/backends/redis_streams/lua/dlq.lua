-- streams/dlq: an operator's hand on the queue -- redrive dead letters, purge jobs of one
-- state, delete one job in any state, and the dead letters' retention (maintenance).
-- KEYS: 1 stream, 2 idx, 3 delayed, 4 parked bodies, 5 parked meta, 6 ttl, 7 dead, 8 counters,
--       9 leases, 10 call records, 11 call record times;
--       redrive to another queue of the same slot only: 12 target stream, 13 target idx,
--       14 target ttl, 15 target counters, 16 target migration record
-- ARGV: 1 op, 2 call id ("" = not recorded), 3 queue, then per op:
--   redrive: 4 page size, 5 cursor, 6 upto, 7.. job ids (none: a page of every dead letter)
--            -> {n redriven, next cursor | "", upto}
--   purge:   4 state ("ready" | "delayed" | "dead"), 5 page size, 6 cursor, 7 upto, 8.. job ids
--            (none: a page of every job in that state) -> {n removed, next cursor | "", upto}
--   delete:  4 job id -> {1 removed | 0 not stored here}
--   undo:    4 job id -> {1 | 0}: a dead job parked by a cross-slot redrive ("M") back to the
--            dead letters (the target already stored its id)
--   prune:   4 retention ms (0 = no age limit), 5 most dead letters (0 = no count limit),
--            6 batch -> {n dropped}
-- A page (no job ids) walks at most `page size` entries: from after `cursor` ("" = the start)
-- up to `upto`, the last entry when the first page ran ("" = take it now), so a walk of
-- "every job" ends even while jobs keep coming; the reply's cursor is "" when the walk is done.
-- A redrive to another queue that a migration sealed: the error "QSMOVED <home>" (nothing
-- redriven by this call, not recorded).
-- Every reply but prune's is recorded under the call id: a retried call gets it without acting
-- again (prune acts on what is stored, so running it twice drops nothing more). Times are the
-- server's (TIME).
local op, cid = ARGV[1], ARGV[2]
queue = ARGV[3]
local prior = recalled(cid)
if prior then return prior end

-- is the stream entry pending in some group (delivered and not yet acked)?
local function pending_anywhere(eid)
  for _, g in ipairs(groups()) do
    if idcmp(eid, g["last-delivered-id"]) <= 0 and #rcall("XPENDING", S, g.name, eid, eid, 1) > 0 then
      return true
    end
  end
  return false
end

-- forget a job's index and TTL entry, when the index still points at `loc`
local function unindex(jid, loc)
  if jid and rcall("HGET", I, jid) == loc then
    rcall("HDEL", I, jid); rcall("ZREM", T, jid)
  end
end

-- the last id of a stream ("" when empty): the end of a walk that takes "every" entry
local function tail(key)
  local last = rcall("XREVRANGE", key, "+", "-", "COUNT", 1)
  return last[1] and last[1][1] or ""
end

-- a page of stream entries after `cursor` up to `upto`
local function page(key, cursor, upto, size)
  if upto == "" then return {} end
  local from = cursor == "" and "-" or ("(" .. cursor)
  return rcall("XRANGE", key, from, upto, "COUNT", size)
end

-- the cursor after a page: its last id, or "" when the page was short (the walk is done)
local function next_cursor(entries, size)
  if #entries < size then return "" end
  return entries[#entries][1]
end

-- a dead letter back to the tail of a stream, ready, with retry_count 0 and its history kept
-- (attempts, last error, origin); with several groups it goes back to the group it died in
-- (its g field). Same queue: the job's index points at the new entry. Another queue (target
-- keys given): written there and removed here, unless the target already stores the id: then
-- it stays dead here. Returns whether it was redriven.
local function revive(did, m)
  if #KEYS >= 15 then
    local TS, TI, TT, TC = KEYS[12], KEYS[13], KEYS[14], KEYS[15]
    if rcall("HGET", TI, m.j) then return false end
    m.r = 0; m.why = nil; m.at = nil; m.o = queue; m.g = nil
    rcall("HSET", TI, m.j, rcall("XADD", TS, "*", unpack(flat(m))))
    if num(m.x) > 0 then rcall("ZADD", TT, m.x, m.j) end
    rcall("HINCRBY", TC, "enqueued", 1)
    rcall("XDEL", D, did)
    unindex(m.j, "X" .. did)
    return true
  end
  m.r = 0; m.why = nil; m.at = nil
  local alive = false
  for _, g in ipairs(groups()) do
    if g.name == m.g then alive = true end
  end
  if #groups() <= 1 or not alive then m.g = nil end -- its group is gone: back for every group
  append(m)
  rcall("XDEL", D, did)
  if num(m.x) > 0 then rcall("ZADD", T, m.x, m.j) end
  return true
end

-- whether a dead letter may come back: it names its job, and the job lives nowhere else
-- (the index points at this dead letter or at nothing), or it is one group's dead letter
-- of a fan-out job (several groups each dead-letter their own copy)
local function revivable(did, m)
  if not m.j then return false end
  local loc = rcall("HGET", I, m.j)
  return loc == nil or loc == false or loc == "X" .. did or m.g ~= nil
end

local function main()
if op == "redrive" then
  if #KEYS >= 16 then
    local home = moved_to(KEYS[16]) if home then return redis.error_reply("QSMOVED " .. home) end
  end
  local size, cursor, upto = tonumber(ARGV[4]), ARGV[5], ARGV[6]
  local n = 0
  if #KEYS < 15 then catch_up(false) end -- in place: what came due goes first (ready order)
  if #ARGV >= 7 then
    for i = 7, #ARGV do
      local loc = rcall("HGET", I, ARGV[i])
      if loc and string.sub(loc, 1, 1) == "X" then
        local did = string.sub(loc, 2)
        local e = rcall("XRANGE", D, did, did)
        if #e > 0 then
          local m = tomap(e[1][2])
          m.j = ARGV[i]
          if revive(did, m) then n = n + 1 end
        else
          rcall("HDEL", I, ARGV[i])
        end
      end
    end
    return {n, "", ""}
  end
  if upto == "" and cursor == "" then upto = tail(D) end
  local entries = page(D, cursor, upto, size)
  for _, e in ipairs(entries) do
    local m = tomap(e[2])
    if revivable(e[1], m) and revive(e[1], m) then n = n + 1 end
  end
  return {n, next_cursor(entries, size), upto}
end

if op == "purge" then
  local state, size, cursor, upto = ARGV[4], tonumber(ARGV[5]), ARGV[6], ARGV[7]
  local n = 0
  local function drop_ready(jid, eid)
    if pending_anywhere(eid) then return end
    n = n + rcall("XDEL", S, eid)
    unindex(jid, eid)
  end
  local function drop_delayed(jid)
    if rcall("HGET", I, jid) ~= "D" then return end
    unpark(jid); rcall("HDEL", I, jid); rcall("ZREM", T, jid)
    n = n + 1
  end
  local function drop_dead(jid, did)
    n = n + rcall("XDEL", D, did)
    unindex(jid, "X" .. did)
  end
  if #ARGV >= 8 then
    for i = 8, #ARGV do
      local jid = ARGV[i]
      local loc = rcall("HGET", I, jid)
      if loc and state == "ready" and string.match(loc, "^%d") then
        if #rcall("XRANGE", S, loc, loc) > 0 then drop_ready(jid, loc) end
      elseif loc == "D" and state == "delayed" then
        drop_delayed(jid)
      elseif loc and state == "dead" and string.sub(loc, 1, 1) == "X" then
        drop_dead(jid, string.sub(loc, 2))
      end
    end
    if n > 0 then rcall("HINCRBY", C, "purged", n) end
    return {n, "", ""}
  end
  local nxt = ""
  if state == "delayed" then
    -- by due time; `upto` is the latest due time when the walk began (each page removes
    -- what it returns, so the walk starts at the head every time)
    if upto == "" and cursor == "" then
      local last = rcall("ZRANGE", Z, -1, -1, "WITHSCORES")
      upto = last[2] or ""
    end
    if upto ~= "" then
      local ids = rcall("ZRANGEBYSCORE", Z, "-inf", upto, "LIMIT", 0, size)
      for _, jid in ipairs(ids) do drop_delayed(jid) end
      if #ids == size then nxt = "more" end
    end
  elseif state == "dead" then
    if upto == "" and cursor == "" then upto = tail(D) end
    local entries = page(D, cursor, upto, size)
    for _, e in ipairs(entries) do drop_dead(tomap(e[2]).j, e[1]) end
    nxt = next_cursor(entries, size)
  else
    -- ready: the entries after the earliest last-delivered id of any group (what some group
    -- has not read yet) that no group has pending and that are their job's current entry
    if upto == "" and cursor == "" then
      upto = tail(S)
      local gs = groups()
      cursor = gs[1] and gs[1]["last-delivered-id"] or "0-0"
      for _, g in ipairs(gs) do
        if idcmp(g["last-delivered-id"], cursor) < 0 then cursor = g["last-delivered-id"] end
      end
    end
    local entries = page(S, cursor, upto, size)
    for _, e in ipairs(entries) do
      local jid = tomap(e[2]).j
      if jid and rcall("HGET", I, jid) == e[1] then drop_ready(jid, e[1]) end
    end
    nxt = next_cursor(entries, size)
  end
  if n > 0 then rcall("HINCRBY", C, "purged", n) end
  return {n, nxt, upto}
end

if op == "delete" then
  local jid = ARGV[4]
  local loc = rcall("HGET", I, jid)
  if not loc then return {0} end
  if string.match(loc, "^%d") then
    if #rcall("XRANGE", S, loc, loc) == 0 then
      rcall("HDEL", I, jid); rcall("ZREM", T, jid)
      return {0}
    end
    -- leased: released in every group that has it pending; the lease records stay until their
    -- deadlines (the sweep drops them), so a holder's later ack, nack or extend finds its
    -- record without the job and gets "lease lost"
    for _, g in ipairs(groups()) do
      if idcmp(loc, g["last-delivered-id"]) <= 0 then rcall("XACK", S, g.name, loc) end
    end
    rcall("XDEL", S, loc)
  elseif loc == "D" then
    unpark(jid)
  elseif string.sub(loc, 1, 1) == "X" then
    local did = string.sub(loc, 2)
    if rcall("XDEL", D, did) == 0 then
      rcall("HDEL", I, jid); rcall("ZREM", T, jid)
      return {0}
    end
  else
    return {0} -- held by a migration, or a cross-slot move under way: not this call's to drop
  end
  rcall("HDEL", I, jid); rcall("ZREM", T, jid)
  rcall("HINCRBY", C, "deleted", 1)
  return {1}
end

if op == "undo" then
  -- a cross-slot redrive whose target already stored the id: the job parked under "M" by
  -- settle's moveout goes back to the dead letters (its reason and time kept)
  local jid = ARGV[4]
  if rcall("HGET", I, jid) ~= "M" then return {0} end
  local m = decode_object(rcall("HGET", PM, jid))
  local body = rcall("HGET", PB, jid)
  if not m or not body or m.s ~= "dead" then return {0} end
  m.j = jid; m.b = body; m.s = nil; m.due = nil
  local did = rcall("XADD", D, "*", unpack(flat(m)))
  rcall("HSET", I, jid, "X" .. did)
  rcall("HDEL", PB, jid); rcall("HDEL", PM, jid)
  return {1}
end

if op == "prune" then
  local keep_ms, most, batch = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
  local n = 0
  local function drop(entries)
    for _, e in ipairs(entries) do
      n = n + rcall("XDEL", D, e[1])
      unindex(tomap(e[2]).j, "X" .. e[1])
    end
  end
  -- the dead letters are in the order they died (entry id = when): oldest first
  if keep_ms > 0 then drop(rcall("XRANGE", D, "-", tostring(now - keep_ms), "COUNT", batch)) end
  if most > 0 and n < batch then
    local over = rcall("XLEN", D) - most
    if over > 0 then drop(rcall("XRANGE", D, "-", "+", "COUNT", math.min(over, batch - n))) end
  end
  if n > 0 then rcall("HINCRBY", C, "dead_dropped", n) end
  return {n}
end
return redis.error_reply("ERR unknown dlq op " .. tostring(op))
end

local reply = main()
if type(reply) == "table" and reply.err then return reply end
if op == "prune" then return reply end
return record(cid, reply)

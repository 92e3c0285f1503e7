-- queuestore streams library, a part after _lib.lua (in every script): the ready order, the
-- memory backend's. A job is ready from the moment it comes due, and every script that
-- stores, requeues or leases first makes ready what is due -- expired leases in
-- deadline order (ties in lease order: entry id order), then due delayed jobs in due order
-- (ties in store order: the parked meta's n) -- so what it then appends goes after them.

-- a job past its TTL (expiry ms in field x; 0 = none)
local function expired(m)
  local x = num(m.x)
  return x > 0 and x <= now
end

-- a parked meta that is not a JSON object of the expected field types is garbage
local META_NUMS = {"r", "m", "a", "x"}
local function checked_meta(raw)
  local m = decode_object(raw or "{}")
  if not m then return nil, "unreadable parked meta" end
  for _, k in ipairs(META_NUMS) do
    if m[k] ~= nil and m[k] ~= "" and not tonumber(m[k]) then return nil, "parked meta field " .. k .. " is not a number" end
  end
  for _, k in ipairs({"e", "o", "g"}) do
    if m[k] ~= nil and type(m[k]) ~= "string" then return nil, "parked meta field " .. k .. " is not a string" end
  end
  return m
end

-- up to limit members of zset key scored <= now, in score order, ties ordered by tie(member)
local function due_members(key, limit, tie)
  local got = rcall("ZRANGEBYSCORE", key, "-inf", NOW_MS, "WITHSCORES", "LIMIT", 0, limit)
  local out = {}
  for i = 1, #got, 2 do out[#out + 1] = {m = got[i], s = tonumber(got[i + 1]) or 0, k = tie(got[i]), n = #out + 1} end
  table.sort(out, function(x, y)
    if x.s ~= y.s then return x.s < y.s end
    if x.k[1] ~= y.k[1] then return x.k[1] < y.k[1] end
    if x.k[2] ~= y.k[2] then return x.k[2] < y.k[2] end
    return x.n < y.n
  end)
  return out
end

-- due delayed jobs become stream entries (written before the parked copy is removed); a garbage
-- parked meta dead-letters the job with its body and the reason, and the others keep flowing
local function promote(limit)
  local function tie(jid)
    local m = decode_object(rcall("HGET", PM, jid))
    return {m and tonumber(m.n) or 0, 0}
  end
  local n = 0
  for _, e in ipairs(due_members(Z, limit, tie)) do
    local jid = e.m
    local body = rcall("HGET", PB, jid)
    if body then
      local raw = rcall("HGET", PM, jid)
      local m, why = checked_meta(raw)
      if not m then
        dead_letter({j = jid, b = body, e = string.sub(tostring(raw), 1, 200)}, why)
        rcall("ZREM", T, jid)
      else
        m.j = jid; m.b = body
        if expired(m) then
          rcall("HDEL", I, jid); rcall("ZREM", T, jid); rcall("HINCRBY", C, "expired", 1)
        else
          append(m)
          n = n + 1
        end
      end
    elseif rcall("HGET", I, jid) == "D" then
      rcall("HDEL", I, jid)
    end
    unpark(jid)
  end
  return n
end

-- an expired lease: back to the tail (retry_count + 1, last_error "lease expired"), or past
-- max_retries to the dead letters; a waiting job past its TTL is dropped instead
local function requeue(eid, g, d, m)
  local r, mx, a = num(m.r), num(m.m), num(m.a)
  rcall("XACK", S, g, eid)
  if expired(m) then
    finish(eid, m.j, g); rcall("HINCRBY", C, "expired", 1)
    return
  end
  m.e = "lease expired"; m.a = a + d
  if r + d > mx then
    m.r = r + d - 1
    dead_letter(m, "lease expired", g)
  else
    m.r = r + d
    if #groups() > 1 then m.g = g end
    append(m)
  end
  finish(eid, nil, g)
  if m.j and not rcall("HGET", I, m.j) then rcall("ZREM", T, m.j) end
end

-- an expired lease on one entry: requeued (or dead-lettered), or released when the entry is
-- gone; a take's consumer left with nothing pending goes too, unless the caller sees to it
local function reclaim_entry(eid, g, keep_take)
  local p = pending(g, eid, eid, 1)
  if #p == 0 then return end
  local e = rcall("XRANGE", S, eid, eid)
  if #e == 0 then
    -- deleted while pending: released and counted, never retried
    rcall("XACK", S, g, eid); rcall("HINCRBY", C, "lost", 1)
  else
    requeue(eid, g, tonumber(p[1][4]), tomap(e[1][2]))
  end
  if not keep_take then close_take(g, p[1][2]) end
end

-- an expired take lease ("group<US>@<call id>:<consumer>"): each entry still pending under
-- the take's consumer is reclaimed, in entry id order, but one with a lease record of its own
-- (extended since). Up to limit entries; the record and the consumer go once none is left to reclaim.
local function reclaim_take(member, g, consumer, limit)
  local start, n = "-", 0
  while n < limit do
    local page = rpcall("XPENDING", S, g, start, "+", limit, consumer)
    if type(page) ~= "table" or page.err then page = {} end
    for _, row in ipairs(page) do
      if not rcall("ZSCORE", L, g .. US .. row[1]) then
        reclaim_entry(row[1], g, true)
        n = n + 1
      end
    end
    if #page < limit then
      rcall("ZREM", L, member)
      close_take(g, consumer)
      return
    end
    start = "(" .. page[#page][1]
  end
end

-- expired leases ("group<US>entry id" and take members), ties in entry id order (the order leased);
-- a take's mark, or a member that names no entry (garbage), is dropped
local function reclaim_due(limit)
  local function tie(member)
    local sep = string.find(member, US, 1, true)
    if not sep then return {0, 0} end
    local a, b = idparts(string.sub(member, sep + 1))
    return {a or 0, b or 0}
  end
  for _, e in ipairs(due_members(L, limit, tie)) do
    local member = e.m
    local sep = string.find(member, US, 1, true)
    local g, rest = sep and string.sub(member, 1, sep - 1), sep and string.sub(member, sep + 1)
    if sep and is_take(rest) then
      reclaim_take(member, g, rest, limit)
    else
      rcall("ZREM", L, member)
      if sep and string.match(rest, "^%d+%-%d+$") then reclaim_entry(rest, g) end
    end
  end
end

-- waiting jobs past their TTL are dropped and counted (in-flight ones are left alone)
local function expire(batch)
  local gone = rcall("ZRANGEBYSCORE", T, "-inf", NOW_MS, "LIMIT", 0, batch)
  local gs = #gone > 0 and groups() or {}
  for _, jid in ipairs(gone) do
    local loc = rcall("HGET", I, jid)
    rcall("ZREM", T, jid)
    if loc == "D" then
      unpark(jid); rcall("HDEL", I, jid)
      rcall("HINCRBY", C, "expired", 1)
    elseif loc and string.match(loc, "^%d") then
      local undelivered = true
      for _, g in ipairs(gs) do
        if idcmp(loc, g["last-delivered-id"]) <= 0 then undelivered = false end
      end
      if undelivered then
        rcall("XDEL", S, loc); rcall("HDEL", I, jid); rcall("HINCRBY", C, "expired", 1)
      end
    end
  end
end

-- before a script appends a job: what is due, in ready order (one range read per set when
-- nothing is); reclaim = false leaves expired leases to the next enqueue or dequeue (as a lease
-- holder's nack does in the memory backend)
local CATCH_UP_LIMIT = 1000
local function catch_up(reclaim)
  if reclaim then reclaim_due(CATCH_UP_LIMIT) end
  promote(CATCH_UP_LIMIT)
end

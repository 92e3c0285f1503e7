-- streams/migrate: the migration SPI's holding area (one stream per migration id, under the tag).
-- KEYS: 1 stream, 2 idx, 3 delayed, 4 parked bodies, 5 parked meta, 6 ttl, 7 dead, 8 counters,
--       9 leases (unused), 10-11 call records (unused), 12 held
-- A held job is also parked under its id (body in 4, the other fields as JSON in 5, index
-- "H<held id>"), so a lookup by id finds it without knowing the migration id. An entry that
-- carries no job id is garbage: it is held under "garbage-<entry id>" from the ready stream and
-- "garbage-dead-<entry id>" from the dead stream (entry ids are per stream: two entries added in
-- one millisecond share one), never dropped, for the migration to dead-letter or refuse.
-- ARGV: 1 op ("hold" | "release" | "restore"), 2 group, 3 count, then
--       hold: 4 state ("ready" | "delayed" | "dead") -> {{held id, fields}...}
--       release: 4.. job ids -> n released;  restore -> {n restored, n of them ready} (call until 0);
--       rotate: 4 upto id, 5 cursor -> next cursor | "" (re-append the ready entries that were
--       queued before a restore behind the restored ones, so the old dequeue order comes back)
local H = KEYS[12]
local op, group, count = ARGV[1], ARGV[2], tonumber(ARGV[3])
-- held entries also carry their state (s) and, delayed, their due time (due)
local HELD_ORDER = {"j", "b", "r", "m", "a", "x", "e", "o", "g", "why", "at", "s", "due"}

local function last_delivered()
  for _, g in ipairs(groups()) do
    if g.name == group then return g["last-delivered-id"] end
  end
  return "0-0"
end
local function hold(m, state)
  m.s = state
  local f = flat(m, HELD_ORDER)
  local hid = rcall("XADD", H, "*", unpack(f))
  local meta = {}
  for i = 1, #f, 2 do
    if f[i] ~= "j" and f[i] ~= "b" then meta[f[i]] = f[i + 1] end
  end
  rcall("HSET", PB, m.j, m.b or "")
  rcall("HSET", PM, m.j, cjson.encode(meta))
  rcall("HSET", I, m.j, "H" .. hid)
  return {hid, f}
end
local function unhold(jid)
  rcall("HDEL", PB, jid); rcall("HDEL", PM, jid)
end

if op == "hold" then
  local state, out = ARGV[4], {}
  if state == "ready" then
    local last = last_delivered()
    for _, e in ipairs(rcall("XRANGE", S, "(" .. last, "+", "COUNT", count)) do
      local m = tomap(e[2])
      if not m.j then
        m.j = "garbage-" .. e[1]
        out[#out + 1] = hold(m, "ready")
        rcall("XDEL", S, e[1])
      elseif rcall("HGET", I, m.j) == e[1] then
        out[#out + 1] = hold(m, "ready")
        rcall("XDEL", S, e[1]); rcall("ZREM", T, m.j)
      end
    end
  elseif state == "delayed" then
    local due = rcall("ZRANGE", Z, 0, count - 1, "WITHSCORES")
    for i = 1, #due, 2 do
      local jid = due[i]
      local raw = rcall("HGET", PM, jid)
      local m = decode_object(raw or "{}")
      local body = rcall("HGET", PB, jid)
      if not m then
        -- garbage meta: the job is dead-lettered with its body, not held
        if body then dead_letter({j = jid, b = body, e = string.sub(tostring(raw), 1, 200)}, "unreadable parked meta") end
        unpark(jid); rcall("ZREM", T, jid)
      else
        m.j = jid; m.b = body; m.due = due[i + 1]
        unpark(jid); rcall("ZREM", T, jid)
        if m.b then out[#out + 1] = hold(m, "delayed") end
      end
    end
  elseif state == "dead" then
    for _, e in ipairs(rcall("XRANGE", D, "-", "+", "COUNT", count)) do
      local m = tomap(e[2])
      m.j = m.j or ("garbage-dead-" .. e[1])
      out[#out + 1] = hold(m, "dead")
      rcall("XDEL", D, e[1])
    end
  end
  return out
elseif op == "release" then
  local n = 0
  for i = 4, #ARGV do
    local loc = rcall("HGET", I, ARGV[i])
    if loc and string.sub(loc, 1, 1) == "H" then
      n = n + rcall("XDEL", H, string.sub(loc, 2))
      rcall("HDEL", I, ARGV[i]); unhold(ARGV[i])
    end
  end
  if rcall("XLEN", H) == 0 then rcall("DEL", H) end
  return n
elseif op == "rotate" then
  local upto, from = ARGV[4], ARGV[5]
  local last = last_delivered()
  if idcmp(last, from) > 0 then from = last end
  local page = rcall("XRANGE", S, "(" .. from, upto, "COUNT", count)
  for _, e in ipairs(page) do
    local m = tomap(e[2])
    if m.j and rcall("HGET", I, m.j) == e[1] then
      append(m, HELD_ORDER)
      rcall("XDEL", S, e[1])
    end
  end
  if #page < count then return "" end
  return page[#page][1]
elseif op == "restore" then
  local n, ready = 0, 0
  for _, e in ipairs(rcall("XRANGE", H, "-", "+", "COUNT", count)) do
    local m = tomap(e[2])
    local state, due = m.s, m.due
    m.s = nil; m.due = nil
    if state == "delayed" and not tonumber(due) then state = "bad" end
    if state ~= "delayed" then unhold(m.j) end
    if state ~= "dead" and state ~= "delayed" and state ~= "ready" then
      -- an unknown held state (or a delayed job without its due time): dead-lettered, not dropped
      dead_letter(m, "unknown held state " .. tostring(state))
    elseif state == "dead" then
      rcall("HSET", I, m.j, "X" .. rcall("XADD", D, "*", unpack(flat(m, HELD_ORDER))))
    elseif state == "delayed" then
      park(m.j, m.b, {r = m.r, m = m.m, a = m.a, x = m.x, e = m.e, o = m.o}, due)
    else
      append(m, HELD_ORDER)
      ready = ready + 1
    end
    if (state == "ready" or state == "delayed") and num(m.x) > 0 then rcall("ZADD", T, m.x, m.j) end
    rcall("XDEL", H, e[1])
    n = n + 1
  end
  if rcall("XLEN", H) == 0 then rcall("DEL", H) end
  return {n, ready}
end
return redis.error_reply("ERR unknown migrate op " .. tostring(op))

-- streams/migrate: the migration SPI's holding area (one stream per migration id, under the tag).
-- KEYS: 1 stream, 2 idx, 3 delayed, 4 parked bodies, 5 parked meta, 6 ttl, 7 dead, 8 counters,
--       9 leases (unused), 10 held
-- ARGV: 1 op ("hold" | "release" | "restore"), 2 group, 3 count, then
--       hold: 4 state ("ready" | "delayed" | "dead") -> {{held id, fields}...}
--       release: 4.. job ids -> n released;  restore -> {n restored, n of them ready} (call until 0);
--       rotate: 4 upto id, 5 cursor -> next cursor | "" (re-append the ready entries that were
--       queued before a restore behind the restored ones, so the old dequeue order comes back)
local S, I, Z, PB, PM, T, D, C, H = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[10]
local op, group, count = ARGV[1], ARGV[2], tonumber(ARGV[3])

local function tomap(flat)
  local m = {}
  for i = 1, #flat, 2 do m[flat[i]] = flat[i + 1] end
  return m
end
local ORDER = {"j", "b", "r", "m", "a", "x", "e", "o", "g", "why", "at", "s", "due"}
local function idparts(id)
  local a, b = string.match(id, "^(%d+)-(%d+)$")
  return tonumber(a), tonumber(b)
end
local function idcmp(x, y)
  local a1, b1 = idparts(x)
  local a2, b2 = idparts(y)
  if a1 ~= a2 then return a1 < a2 and -1 or 1 end
  if b1 ~= b2 then return b1 < b2 and -1 or 1 end
  return 0
end
local function last_delivered()
  if rcall("EXISTS", S) == 0 then return "0-0" end
  for _, g in ipairs(rcall("XINFO", "GROUPS", S)) do
    local gm = tomap(g)
    if gm.name == group then return gm["last-delivered-id"] end
  end
  return "0-0"
end
local function flat(m)
  local f = {}
  for _, k in ipairs(ORDER) do
    local v = m[k]
    if v and v ~= "" then f[#f + 1] = k; f[#f + 1] = tostring(v) end
  end
  return f
end
local function hold(m, state)
  m.s = state
  local f = flat(m)
  local hid = rcall("XADD", H, "*", unpack(f))
  rcall("HSET", I, m.j, "H" .. hid)
  return {hid, f}
end

if op == "hold" then
  local state, out = ARGV[4], {}
  if state == "ready" then
    local last = last_delivered()
    for _, e in ipairs(rcall("XRANGE", S, "(" .. last, "+", "COUNT", count)) do
      local m = tomap(e[2])
      if m.j and rcall("HGET", I, m.j) == e[1] then
        out[#out + 1] = hold(m, "ready")
        rcall("XDEL", S, e[1]); rcall("ZREM", T, m.j)
      end
    end
  elseif state == "delayed" then
    local due = rcall("ZRANGE", Z, 0, count - 1, "WITHSCORES")
    for i = 1, #due, 2 do
      local jid = due[i]
      local m = cjson.decode(rcall("HGET", PM, jid) or "{}")
      m.j = jid; m.b = rcall("HGET", PB, jid); m.due = due[i + 1]
      if m.b then out[#out + 1] = hold(m, "delayed") end
      rcall("ZREM", Z, jid); rcall("HDEL", PB, jid); rcall("HDEL", PM, jid); rcall("ZREM", T, jid)
    end
  elseif state == "dead" then
    for _, e in ipairs(rcall("XRANGE", D, "-", "+", "COUNT", count)) do
      local m = tomap(e[2])
      if m.j then out[#out + 1] = hold(m, "dead") end
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
      rcall("HDEL", I, ARGV[i])
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
      rcall("HSET", I, m.j, rcall("XADD", S, "*", unpack(flat(m))))
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
    if state == "dead" then
      rcall("HSET", I, m.j, "X" .. rcall("XADD", D, "*", unpack(flat(m))))
    elseif state == "delayed" then
      rcall("HSET", PB, m.j, m.b)
      rcall("HSET", PM, m.j, cjson.encode({r = m.r, m = m.m, a = m.a, x = m.x, e = m.e, o = m.o}))
      rcall("ZADD", Z, due, m.j)
      rcall("HSET", I, m.j, "D")
    else
      rcall("HSET", I, m.j, rcall("XADD", S, "*", unpack(flat(m))))
      ready = ready + 1
    end
    if state ~= "dead" and (tonumber(m.x or "0") or 0) > 0 then rcall("ZADD", T, m.x, m.j) end
    rcall("XDEL", H, e[1])
    n = n + 1
  end
  if rcall("XLEN", H) == 0 then rcall("DEL", H) end
  return {n, ready}
end
return redis.error_reply("ERR unknown migrate op " .. tostring(op))

-- queuestore streams library: shared by every streams script (inserted after the prelude).
-- KEYS 1..11 of every streams script, in this order (a script's own keys follow from KEYS[12]):
-- 1 stream, 2 idx, 3 delayed, 4 parked bodies, 5 parked meta, 6 ttl, 7 dead, 8 counters, 9 leases,
-- 10 call records (hash: call id -> JSON reply), 11 call record times (zset: call id -> ms)
local S, I, Z, PB, PM, T, D, C, L = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local CR, CT = KEYS[10], KEYS[11]
local US = "\031" -- a lease record is "group<US>entry id" in the leases zset
-- a leases member longer than a listpack may hold: see take.lua
local SKIPLIST_SEED = string.rep("~", 160)

-- the server's clock (ms): every deadline and due time is on it, never on a client's. NOW_MS is
-- the same time as a string made of TIME's own (seconds, then the first three of the six digits
-- of microseconds): a command argument that needs no number formatting
local function server_ms()
  local t = rcall("TIME")
  local ms = t[1] .. string.sub("00000" .. t[2], -6, -4)
  return ms, tonumber(ms)
end
local NOW_MS, now = server_ms()
-- read by dead_letter / finish; a script sets them from its ARGV
local retention, queue = nil, nil

-- call records: a mutating call carries a call id; its reply is recorded and a retry with the
-- same id gets the recorded reply without acting again. An unreadable record is an unknown
-- outcome, never a guess. The call id argument is "<id>" or "<id>|<id1>,<id2>,...": the listed
-- ids are the client's earlier calls whose replies it received (no retry of them can come any
-- more), and their records are deleted (forgotten on receipt). Records a client never lists
-- (it died, or a reply was lost) are pruned: the last CALL_MAX calls of at most CALL_WINDOW_MS
-- ago are kept.
local CALL_WINDOW_MS, CALL_MAX, CALL_PRUNE = 60000, 100000, 64
local function forget_calls(ids)
  if #ids > 0 then
    rcall("HDEL", CR, unpack(ids))
    rcall("ZREM", CT, unpack(ids))
  end
end
-- the call id of a call id argument, and the listed ids (a string, or nil)
local function call_arg(arg)
  local bar = string.find(arg, "|", 1, true)
  if not bar then return arg, nil end
  return string.sub(arg, 1, bar - 1), string.sub(arg, bar + 1)
end
-- the recorded reply of call arg (nil: not recorded); deletes the records arg lists. A record
-- found is written again, unchanged: the retried call then replicates a write, so a WAIT /
-- WAITAOF after it on its (new) connection covers the first run's writes (some servers move a
-- connection's WAIT offset only when its own commands replicate)
local function recalled(arg)
  if arg == nil or arg == "" then return nil end
  local id, listed = call_arg(arg)
  if listed then
    local ids = {}
    for k in string.gmatch(listed, "[^,]+") do ids[#ids + 1] = k end
    forget_calls(ids)
  end
  if id == "" then return nil end
  local rec = rcall("HGET", CR, id)
  if not rec then return nil end
  rcall("HSET", CR, id, rec)
  local ok, v = pcall(cjson.decode, rec)
  if not ok or type(v) ~= "table" then
    return redis.error_reply("QSUNKNOWN call record " .. id .. " is unreadable")
  end
  return v
end
-- old records are pruned on about one call in 8 (picked by the last two bytes of its id: call
-- ids end with a counter's hex digits, or with one and "."), up to CALL_PRUNE at a time:
-- eight times the rate at which calls add records, at two commands less for the other calls
local function prune_turn(id)
  local n = #id
  return (string.byte(id, n) + string.byte(id, n > 1 and n - 1 or n)) % 8 == 0
end
-- the JSON of a one-status reply, written out (cjson formats every number)
local STATUS_JSON = {[0] = "[0]", [1] = "[1]"}
local function record(arg, reply)
  if arg == nil or arg == "" then return reply end
  local id = call_arg(arg)
  if id == "" then return reply end
  if prune_turn(id) then
    forget_calls(rcall("ZRANGEBYSCORE", CT, "-inf", now - CALL_WINDOW_MS, "LIMIT", 0, CALL_PRUNE))
    local over = rcall("ZCARD", CT) - CALL_MAX
    if over > 0 then forget_calls(rcall("ZRANGE", CT, 0, math.min(over, CALL_PRUNE) - 1)) end
  end
  rcall("HSET", CR, id, STATUS_JSON[#reply == 1 and reply[1]] or cjson.encode(reply))
  rcall("ZADD", CT, NOW_MS, id)
  return reply
end

-- a JSON object read from our own keys, or nil when it is not one (garbage never raises)
local function decode_object(raw)
  if not raw then return nil end
  local ok, v = pcall(cjson.decode, raw)
  if ok and type(v) == "table" then return v end
  return nil
end

-- entry ids: {ms, seq} and a three-way compare
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

local function num(v) return tonumber(v or "0") or 0 end

-- entry fields: a flat reply to a map, and a map back to flat XADD arguments in a fixed order
local function tomap(flat)
  local m = {}
  for i = 1, #flat, 2 do m[flat[i]] = flat[i + 1] end
  return m
end
local ORDER = {"j", "b", "r", "m", "a", "x", "e", "o", "g", "why", "at"}
local function flat(m, order)
  local f = {}
  for _, k in ipairs(order or ORDER) do
    local v = m[k]
    if v and v ~= "" then f[#f + 1] = k; f[#f + 1] = tostring(v) end
  end
  return f
end
-- a new entry at the tail of the stream; the job's index points at it
local function append(m, order)
  local nid = rcall("XADD", S, "*", unpack(flat(m, order)))
  if m.j then rcall("HSET", I, m.j, nid) end
  return nid
end

-- a delayed job: body and counters parked beside the stream, due time (ms) in the delayed zset
local function park(jid, body, meta, due)
  meta.n = rcall("HINCRBY", C, "seq", 1) -- store order: ties of one due time are promoted in it
  rcall("HSET", PB, jid, body)
  rcall("HSET", PM, jid, cjson.encode(meta))
  rcall("ZADD", Z, due, jid)
  rcall("HSET", I, jid, "D")
end
local function unpark(jid)
  rcall("ZREM", Z, jid); rcall("HDEL", PB, jid); rcall("HDEL", PM, jid)
end

-- the stream's consumer groups (XINFO GROUPS as maps), read once per script call
local gs_cache = nil
local function groups()
  if not gs_cache then
    gs_cache = {}
    if rcall("EXISTS", S) == 0 then return gs_cache end
    for _, g in ipairs(rcall("XINFO", "GROUPS", S)) do gs_cache[#gs_cache + 1] = tomap(g) end
  end
  return gs_cache
end
-- XPENDING of entries lo..hi of a group named by a caller or a lease record, which may name a
-- group that does not exist (a garbled token, a group destroyed behind our back): nothing is
-- pending there then
local function pending(group, lo, hi, count)
  local p = rpcall("XPENDING", S, group, lo, hi, count)
  if type(p) == "table" and p.err then
    if string.sub(p.err, 1, 7) == "NOGROUP" then return {} end
    return rcall("XPENDING", S, group, lo, hi, count)  -- any other error: raised as it is
  end
  return p
end
-- A take sent as one transaction (lease.lua) reads its entries as a consumer of its own,
-- "@<call id>:<consumer>", and records one lease for all of them in the leases zset:
-- "group<US>@<call id>:<consumer>". An entry extended since has a record of its own
-- ("group<US>entry id"), which comes first. Any other consumer name is a caller's (its entries
-- have records of their own).
local function is_take(consumer)
  return type(consumer) == "string" and string.byte(consumer, 1) == 64
end
-- A take whose entries were extended has a mark, "group<US>+@<call id>:<consumer>", scored an
-- hour past the latest deadline its entries were extended to: an ack of the take's entries
-- that finds no mark knows none has a record of its own. The take's close removes it; one left
-- behind (its consumer deleted behind our back) is dropped by the sweep once due.
local TAKE_MARK_GRACE_MS = 3600000
local function take_mark(group, consumer)
  return group .. US .. "+" .. consumer
end
-- the lease deadline (ms, a string) of an entry pending under consumer, or nil
local function lease_score(group, eid, consumer)
  local s = rcall("ZSCORE", L, group .. US .. eid)
  if s or not is_take(consumer) then return s end
  return rcall("ZSCORE", L, group .. US .. consumer)
end
-- every entry pending under consumer of group ({id, consumer, idle, deliveries} rows)
local function pending_of(group, consumer)
  local out, start = {}, "-"
  while true do
    local page = rpcall("XPENDING", S, group, start, "+", 1000, consumer)
    if type(page) ~= "table" or page.err then return out end
    for _, row in ipairs(page) do out[#out + 1] = row end
    if #page < 1000 then return out end
    start = "(" .. page[#page][1]
  end
end
-- a take's consumer with nothing pending under it goes, and its lease record with it
local function close_take(group, consumer)
  if not is_take(consumer) then return end
  local p = rpcall("XPENDING", S, group, "-", "+", 1, consumer)
  if type(p) ~= "table" or p.err or #p > 0 then return end
  rpcall("XGROUP", "DELCONSUMER", S, group, consumer)
  rcall("ZREM", L, group .. US .. consumer, take_mark(group, consumer))
end
-- is the entry still needed by another group (undelivered there, or pending there)?
local function needed_elsewhere(eid, mine)
  for _, g in ipairs(groups()) do
    if g.name ~= mine then
      if idcmp(eid, g["last-delivered-id"]) > 0 then return true end
      if #rcall("XPENDING", S, g.name, eid, eid, 1) > 0 then return true end
    end
  end
  return false
end
-- after XACK by group `mine`: drop its lease record, then delete the entry (unless retained or
-- needed by another group) and, given the job id, the job's index and TTL when the index points
-- at this entry or at an entry that is gone (fan-out: another group's retry entry, since done)
local function finish(eid, jid, mine)
  rcall("ZREM", L, mine .. US .. eid)
  if needed_elsewhere(eid, mine) then return end
  if not retention then rcall("XDEL", S, eid) end
  if not jid then return end
  local loc = rcall("HGET", I, jid)
  if loc and loc ~= eid and not (string.match(loc, "^%d") and #rcall("XRANGE", S, loc, loc) == 0) then
    return -- the job lives on elsewhere (a retry entry, delayed, dead)
  end
  if loc then rcall("HDEL", I, jid) end
  rcall("ZREM", T, jid)
end

-- a dead letter (+ why, when, origin); with several groups it names the group it died in
-- (g), so a redrive hands it back to that group only
local function dead_letter(m, why, group)
  m.why = why; m.at = now; m.o = m.o or queue
  if group and #groups() > 1 then m.g = group end
  local did = rcall("XADD", D, "*", unpack(flat(m)))
  if m.j then rcall("HSET", I, m.j, "X" .. did) end
  rcall("HINCRBY", C, "dead", 1)
end

-- the queue's new home when a migration sealed this store (the "home" field of the queue's
-- migration record, passed by a storing script in its KEYS): the script then answers
-- "QSMOVED <home>" instead of storing, and the library sends the call there
local function moved_to(record_key)
  return rcall("HGET", record_key, "home")
end

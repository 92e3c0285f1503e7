-- streams/take: the non-blocking half of dequeue, the maintenance sweep, and a parser self-test.
-- KEYS: 1 stream, 2 idx, 3 delayed, 4 parked bodies, 5 parked meta, 6 ttl, 7 dead, 8 counters, 9 leases,
--       10 call records, 11 call record times
-- ARGV: 1 mode ("dequeue" | "sweep" | "parse"), 2 group, 3 consumer, 4 count, 5 call id (dequeue;
--       "" = not recorded), 6 claim_min_idle_ms, 7 claim_count, 8 batch, 9 retention (0/1),
--       10 lease_ms, 11 queue, 12 max_length (retention trimming; 0 = keep all)
-- dequeue returns {entries, next_due_ms | false, last_id, lease deadline ms, server now ms[,
-- consumer]} (the consumer: a replayed take's own, when lease.lua took it);
-- each entry {id, deliveries, fields}; next_due_ms and last_id are false when it returns entries
-- (a caller waits only after a take that found nothing). Its record (call id -> {t = deadline,
-- ids = "id,id,..."}: entries delivered once, as every take leases them; a record of the older
-- form e = {{id, deliveries}...} is read too) lets a retry of the same call return the same
-- leased entries (re-read) without leasing more.
-- Order: requeue expired leases at the tail (or dead-letter them past max_retries), promote due
-- delayed jobs (the ready order of _lib), drop waiting jobs past their TTL, then read new entries and record their leases
-- (leases zset: "group<US>entry id" -> deadline ms, on the server's clock). Pending entries without
-- a lease record (orphans: read by something else, or a lost record) are found with XAUTOCLAIM ... JUSTID.
local mode, group, consumer = ARGV[1], ARGV[2], ARGV[3]
local count, cid, cmi = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local claim_count, batch = tonumber(ARGV[7]), tonumber(ARGV[8])
local lease_ms, max_length = tonumber(ARGV[10]), tonumber(ARGV[12])
retention, queue = ARGV[9] == "1", ARGV[11]

-- XAUTOCLAIM reply, either shape: {cursor, entries, deleted ids} (Redis 7, Valkey, Dragonfly)
-- or {cursor, entries} with false in place of a deleted entry (KeyDB; its id stays pending).
-- Entries are {id, fields} or, with JUSTID, bare ids; live ones are returned as {id, fields|false}.
local function parse_autoclaim(reply)
  local live, deleted, holes = {}, {}, 0
  for _, e in ipairs(reply[2] or {}) do
    if type(e) == "string" then live[#live + 1] = {e, false}
    elseif type(e) == "table" and type(e[2]) == "table" then live[#live + 1] = e
    elseif type(e) == "table" and e[1] then deleted[#deleted + 1] = e[1]
    else holes = holes + 1 end
  end
  if type(reply[3]) == "table" then
    for _, id in ipairs(reply[3]) do deleted[#deleted + 1] = id end
  end
  return reply[1], live, deleted, holes
end

if mode == "parse" then
  local cursor, live, deleted, holes = parse_autoclaim(cjson.decode(ARGV[13]))
  local ids = {}
  for _, e in ipairs(live) do ids[#ids + 1] = e[1] end
  return {cursor, ids, deleted, holes}
end

local function reclaim_orphans()
  for _, g in ipairs(groups()) do
    local reply = rcall("XAUTOCLAIM", S, g.name, "qs:reclaimer", cmi, "0-0", "COUNT", claim_count, "JUSTID")
    local _, live, deleted, holes = parse_autoclaim(reply)
    if #deleted > 0 then rcall("HINCRBY", C, "lost", #deleted) end
    for _, id in ipairs(deleted) do rcall("XACK", S, g.name, id) end
    if holes > 0 then
      for _, p in ipairs(rcall("XPENDING", S, g.name, "-", "+", claim_count, "qs:reclaimer")) do
        if #rcall("XRANGE", S, p[1], p[1]) == 0 then
          rcall("XACK", S, g.name, p[1]); rcall("HINCRBY", C, "lost", 1)
        end
      end
    end
    for _, e in ipairs(live) do
      if not rcall("ZSCORE", L, g.name .. US .. e[1]) then reclaim_entry(e[1], g.name) end
    end
  end
end

-- 4. new entries
local function read(out)
  for _ = 1, 4 do
    local want = count - #out
    if want <= 0 then return end
    local reply = rcall("XREADGROUP", "GROUP", group, consumer, "COUNT", want, "STREAMS", S, ">")
    if not reply or not reply[1] or #reply[1][2] == 0 then return end
    for _, e in ipairs(reply[1][2]) do
      -- only the fields this needs (g, x, j) are read from the entry, without a map of it; an
      -- entry as enqueue writes it (j b r m a x) is read at those places, any other is scanned
      local eid, f, m = e[1], e[2], {}
      if #f == 12 and f[1] == "j" and f[11] == "x" then
        m.j, m.x = f[2], f[12]
      else
        for k = 1, #f, 2 do
          local name = f[k]
          if name == "g" or name == "x" or name == "j" then m[name] = f[k + 1] end
        end
      end
      if m.g and m.g ~= group then
        rcall("XACK", S, group, eid); finish(eid, nil, group)  -- requeued for another group
      elseif m.x and expired(m) then
        rcall("XACK", S, group, eid); finish(eid, m.j, group); rcall("HINCRBY", C, "expired", 1)
      else
        out[#out + 1] = {eid, 1, e[2]}
      end
    end
  end
end

-- retention mode: trim acked entries with MINID at or below what any group still needs
local function trim()
  if not retention or max_length <= 0 then return 0 end
  local len = rcall("XLEN", S)
  if len <= max_length then return 0 end
  local head = rcall("XRANGE", S, "-", "+", "COUNT", math.min(len - max_length, batch))
  if #head == 0 then return 0 end
  local ms, seq = idparts(head[#head][1])
  local minid = ms .. "-" .. (seq + 1)
  for _, g in ipairs(groups()) do
    local gms, gseq = idparts(g["last-delivered-id"])
    local after = gms .. "-" .. (gseq + 1)
    if idcmp(after, minid) < 0 then minid = after end
    local summary = rcall("XPENDING", S, g.name)
    if summary[2] and idcmp(summary[2], minid) < 0 then minid = summary[2] end
  end
  return rcall("XTRIM", S, "MINID", minid)
end

-- the {entry id, deliveries} pairs a take's record names
local function leased_in(rec)
  if type(rec.ids) == "string" then
    local out = {}
    for id in string.gmatch(rec.ids, "[^,]+") do out[#out + 1] = {id, 1} end
    return out
  end
  return type(rec.e) == "table" and rec.e or {}
end

-- a retried dequeue (same call id): the entries the first run leased, re-read; nothing more.
-- A take sent as one transaction (lease.lua) names its consumer (c): what is still pending
-- under it, and that consumer is returned as the one the entries are leased to.
local function replay(rec)
  local out = {}
  if is_take(rec.c) then
    local page = rpcall("XPENDING", S, group, "-", "+", count, rec.c)
    if type(page) ~= "table" or page.err then page = {} end
    for _, p in ipairs(page) do
      local e = rcall("XRANGE", S, p[1], p[1])
      if #e > 0 then out[#out + 1] = {p[1], p[4], e[1][2]} end
    end
    return out, rec.c
  end
  for _, le in ipairs(leased_in(rec)) do
    local eid, d = le[1], le[2]
    local p = rcall("XPENDING", S, group, eid, eid, 1)
    if p[1] and p[1][2] == consumer and tonumber(p[1][4]) == tonumber(d) then
      local e = rcall("XRANGE", S, eid, eid)
      if #e > 0 then out[#out + 1] = {eid, d, e[1][2]} end
    end
  end
  return out
end

local function tail_state()
  local nd = rcall("ZRANGE", Z, 0, 0, "WITHSCORES")
  local last = rcall("XREVRANGE", S, "+", "-", "COUNT", 1)
  return nd[2] or false, last[1] and last[1][1] or "0-0"
end

if mode == "dequeue" then
  local prior = recalled(cid)
  if prior then
    if prior.err then return prior end
    local nd, last = tail_state()
    local out, held_by = replay(prior)
    return {out, nd, last, tonumber(prior.t) or now, now, held_by or false}
  end
end

reclaim_due(claim_count)
promote(batch)
expire(batch)
if mode == "sweep" then
  reclaim_orphans()
  return {trim()}
end
local out = {}
read(out)
if #out == 0 then
  reclaim_orphans()
  read(out)
end
local deadline = now + lease_ms
if #out == 0 then
  local nd, last = tail_state()
  return {out, nd, last, deadline, now}
end
-- the lease records in one ZADD per 2000 (Lua's unpack limit is ~8000 values), newest entry
-- first: they share one deadline, so each member goes before the ones already added, and a
-- small zset (a listpack) is not walked to its end for every member
local leased, zargs, dl = {}, {}, string.format("%d", deadline)
for k = #out, 1, -1 do
  zargs[#zargs + 1] = dl
  zargs[#zargs + 1] = group .. US .. out[k][1]
end
for k, e in ipairs(out) do leased[k] = e[1] end
-- From 16 members on, into a skiplist: a member longer than a listpack may hold (64 bytes by
-- default) makes or converts it, and goes in the same script (a left-over one, score 0, is a
-- due lease of no entry: the sweep drops it)
local seeded = #out >= 16
if seeded then rcall("ZADD", L, 0, SKIPLIST_SEED) end
for i = 1, #zargs, 4000 do
  rcall("ZADD", L, unpack(zargs, i, math.min(i + 3999, #zargs)))
end
if seeded then rcall("ZREM", L, SKIPLIST_SEED) end
-- the record names the entries in one string (each was delivered once: read() leases new ones)
record(cid, {t = deadline, ids = table.concat(leased, ",")})
return {out, false, false, deadline, now}

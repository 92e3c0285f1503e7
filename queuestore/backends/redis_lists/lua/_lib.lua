-- queuestore lists library: shared by every lists script (prepended after the prelude and
-- the generated preamble, which declares the key-block indexes JOBS, META, READY, DELAYED,
-- INFLIGHT, DEAD, TTL, INFO, WAKE, IDEM, READY0 (K[READY0 + p] is the list of priority p),
-- STATE_SET and LAYOUT_NAME from layout.py).
-- A job record is "<state>|<attempt>|<token>|<started_at>|<deadline>|<msgpack cold fields>":
-- the hot path rewrites the header with string operations; cold paths decode it whole.
local WAKE_MAX = 64
local NEVER = "1e300" -- "due" when nothing is pending
local BULK = 4000 -- arguments per command when unpacking a list (Lua's unpack limit is ~8000)
local HEADER = "^(%a)|(%d*)|([^|]*)|([^|]*)|([^|]*)|()"

-- the whole seconds of the call's server time as TIME wrote them, set by now_s: a call
-- record's time, a score that Redis stores without formatting a fraction
local NOW_SEC = nil
local function now_s()
  local t = rcall("TIME")
  NOW_SEC = t[1]
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- numbers go to redis as exact strings (Lua's default conversion keeps only 14 digits)
local function fmt(n)
  return string.format("%.17g", n)
end

-- the in-flight set is scored by minus the lease deadline: a new lease (the latest deadline)
-- goes to the head, so inserting into a small (listpack-encoded) set does not scan it (for
-- several entries of one score, added in descending member order, the same holds)
local function lease_score(deadline)
  return fmt(-deadline)
end

-- cmd key a1 a2 ... in chunks (args is a flat Lua list); the sum of the chunks' replies (a
-- count: HSET, HDEL, ZADD, ZREM)
local function bulk(cmd, key, args)
  local n = 0
  for i = 1, #args, BULK do
    n = n + rcall(cmd, key, unpack(args, i, math.min(i + BULK - 1, #args)))
  end
  return n
end

-- HMGET of a list of fields of one hash, in chunks; the values in the order of fields
local function hmget(key, fields)
  if #fields <= BULK then return rcall("HMGET", key, unpack(fields)) end
  local out = {}
  for i = 1, #fields, BULK do
    local part = rcall("HMGET", key, unpack(fields, i, math.min(i + BULK - 1, #fields)))
    for k = 1, #part do out[#out + 1] = part[k] end
  end
  return out
end

-- a member longer than a listpack may hold (zset-max-listpack-value, 64 bytes by default): a
-- ZADD of it makes (or converts) the set a skiplist, where each insert and delete costs
-- O(log N), not a walk of the listpack. Whoever adds it removes it in the same script (a left
-- over one, score 0, is a due lease of no job: the sweep drops it)
local SKIPLIST_SEED = string.rep("~", 160)

-- ZADD of a batch of (score, member) pairs; from 16 members on, into a skiplist. Returns how
-- many of its members were not in the set
local function zadd_batch(key, zargs)
  if #zargs < 32 then return bulk("ZADD", key, zargs) end
  rcall("ZADD", key, 0, SKIPLIST_SEED)
  local added = bulk("ZADD", key, zargs)
  rcall("ZREM", key, SKIPLIST_SEED)
  return added
end

-- the state codes a record may carry, and the types of its cold fields (as layout.Meta)
local STATES = {r = true, d = true, i = true, x = true, m = true, h = true}
local COLD_TYPES = {
  p = "number", mr = "number", rc = "number", q = "number", av = "number", x = "number",
  da = "number", ep = "number", ds = "number", rd = "number",
  le = "string", dr = "string", o = "string", hf = "string", mt = "string", mk = "string",
}
local function well_typed(m)
  for k, v in pairs(m) do
    local want = COLD_TYPES[k]
    if want and type(v) ~= want then return false end
  end
  return true
end

-- a whole record as a table (cold fields plus st, a, t, sa, dl); nil when missing or not ours
-- (an unknown state code, a cold part that does not decode or has a field of the wrong type)
local function parse(raw)
  if not raw then return nil end
  local st, a, t, sa, dl, pos = string.match(raw, HEADER)
  if not st or not STATES[st] then return nil end
  local ok, m = pcall(cmsgpack.unpack, string.sub(raw, pos))
  if not ok or type(m) ~= "table" or not well_typed(m) then return nil end
  m.st, m.a, m.sa, m.dl = st, tonumber(a) or 0, tonumber(sa), tonumber(dl)
  if t ~= "" then m.t = t else m.t = nil end
  return m
end

-- the record of m: the header, then the cold fields (a priority or retry count of 0 left out)
local function pack(m)
  local st, a, t, sa, dl, p, rc = m.st, m.a, m.t, m.sa, m.dl, m.p, m.rc
  m.st, m.a, m.t, m.sa, m.dl = nil, nil, nil, nil, nil
  if p == 0 then m.p = nil end
  if rc == 0 then m.rc = nil end
  local cold = cmsgpack.pack(m)
  m.st, m.a, m.t, m.sa, m.dl, m.p, m.rc = st, a, t, sa, dl, p, rc
  local sas, dls = "", ""
  if sa then sas = fmt(sa) end
  if dl then dls = fmt(dl) end
  return st .. "|" .. string.format("%d", a or 0) .. "|" .. (t or "") .. "|" .. sas .. "|" .. dls .. "|" .. cold
end

local function load(K, id)
  return parse(rcall("HGET", K[META], id))
end

local function save(K, id, m)
  rcall("HSET", K[META], id, pack(m))
end

local function prio(m)
  local p = tonumber(m.p) or PRIO_MIN
  if p < PRIO_MIN then p = PRIO_MIN elseif p > PRIO_MAX then p = PRIO_MAX end
  return p
end

-- the next sweep is due no later than t (a missing "due" already means "sweep now")
local function due_at(K, t)
  local d = tonumber(rcall("HGET", K[INFO], "due"))
  if d and t < d then rcall("HSET", K[INFO], "due", fmt(t)) end
end

-- add n to a counter of the info hash (a value that is not a number counts as 0: never an error)
local function count(K, field, n)
  if n ~= 0 then
    local v = tonumber(rcall("HGET", K[INFO], field)) or 0
    rcall("HSET", K[INFO], field, string.format("%d", v + n))
  end
end

-- the n entries at the head of a ready list, read without removing them: the caller writes
-- what they become, then drops them with drop_head (an error in between leaves them listed,
-- and a listed entry whose record says otherwise is skipped: nothing is lost)
local function head_entries(key, n)
  local got = rcall("LRANGE", key, -n, -1)
  local out = {}
  for j = #got, 1, -1 do out[#out + 1] = got[j] end
  return out
end

local function drop_head(key, n)
  if n > 0 then rcall("LTRIM", key, 0, -(n + 1)) end
end

-- ready lists that may hold entries: field ne:<p> of the info hash is set by every script that
-- pushes onto ready:<p> (once per call: MARKED) and removed by a dequeue that found the list
-- empty, so a dequeue pops only lists that may hold something
local MARKED = {} -- ready list key -> true
local function mark(K, p)
  if not MARKED[K[READY0 + p]] then
    rcall("HSET", K[INFO], "ne:" .. p, "1")
    MARKED[K[READY0 + p]] = true
  end
end

-- place a job in state st: its container entry first, then the record (every prefix is
-- recoverable: an entry whose record says otherwise is skipped). at_head: a ready job goes
-- to the head of its list (restores, aborted moves), a dead one keeps its sequence number.
local function place(K, id, m, st, at_head)
  m.st = st
  if st == "r" then
    m.av = nil
    local p = prio(m)
    mark(K, p)
    if at_head then
      rcall("RPUSH", K[READY0 + p], id)
      count(K, "pop:" .. p, -1)
    else
      rcall("LPUSH", K[READY0 + p], id)
    end
  elseif st == "d" then
    m.ds = rcall("HINCRBY", K[INFO], "seq", 1)
    rcall("ZADD", K[DELAYED], fmt(m.av or 0), id)
    due_at(K, m.av or 0)
  elseif st == "i" then
    rcall("ZADD", K[INFLIGHT], lease_score(m.dl or 0), id)
    due_at(K, m.dl or 0)
  elseif st == "x" then
    if not (at_head and m.q) then m.q = rcall("HINCRBY", K[INFO], "seq", 1) end
    rcall("ZADD", K[DEAD], fmt(m.q), id)
  end
  if (st == "r" or st == "d") and m.x then
    rcall("ZADD", K[TTL], fmt(m.x), id)
    due_at(K, m.x)
  else
    rcall("ZREM", K[TTL], id)
  end
  save(K, id, m)
end

-- take a job out of the container of state old: a sorted set entry is removed; a ready
-- list entry is left in place and counted stale (dropped when it is popped)
local function unlist(K, id, old)
  if old == "r" then
    count(K, "stale", 1)
  elseif STATE_SET[old] then
    rcall("ZREM", K[STATE_SET[old]], id)
  end
end

local function wait_or_ready(K, id, m, now)
  if m.av and m.av > now then place(K, id, m, "d", false) else place(K, id, m, "r", false) end
end

local function kill(K, id, m, reason, now)
  m.t, m.dl = nil, nil
  m.dr, m.da = reason, now
  place(K, id, m, "x", false)
end

-- back to ready (or delayed) with retry_count + 1, or dead past max_retries; true if back
local function retry(K, id, m, now, delay, err)
  if err then m.le = err end
  m.t, m.dl = nil, nil
  if (m.rc or 0) + 1 > (m.mr or 0) then
    kill(K, id, m, err or "max retries exceeded", now)
    return false
  end
  m.rc = (m.rc or 0) + 1
  if delay > 0 then m.av = now + delay else m.av = nil end
  wait_or_ready(K, id, m, now)
  return true
end

-- garbage in our keys (a record that does not parse): dead-letter the id with a reason
local function bury_garbage(K, id, reason, now)
  local m = {p = 0, mr = 0, rc = 0, a = 0}
  kill(K, id, m, reason, now)
  rcall("ZREM", K[DELAYED], id)
  rcall("ZREM", K[INFLIGHT], id)
end

-- a nack without requeue of a leased job whose record does not parse (a dequeue hands such a
-- job back to be buried): dead-letter it as garbage when its header still says leased (under
-- the token, when one is given; a bare id acts on the current lease); true if buried
local function bury_held_garbage(K, id, tok, reason, now)
  local raw = rcall("HGET", K[META], id)
  if not raw or parse(raw) ~= nil then return false end
  local held = string.match(raw, "^i|%d*|([^|]*)|")
  if not held or (tok ~= "" and held ~= tok) then return false end
  bury_garbage(K, id, reason or "corrupt or missing job metadata", now)
  return true
end

-- n wake-up tokens, the list kept at WAKE_MAX at most: a full list (nobody waiting took its
-- tokens) is left as it is, which is what pushing and trimming it back would leave
local function wake(K, n)
  if n <= 0 then return end
  n = math.min(n, WAKE_MAX - rcall("LLEN", K[WAKE]))
  if n <= 0 then return end
  local tokens = {}
  for i = 1, n do tokens[i] = "1" end
  rcall("RPUSH", K[WAKE], unpack(tokens))
end

-- a lease whose job was deleted while leased (the gone set: token -> its lease deadline)
local function lease_deleted(K, tok)
  return tok ~= "" and rcall("ZSCORE", K[GONE], tok) ~= false
end

-- guard shared by nack / extend / move: 1 ok, 0 unknown, -1 lease lost (or deleted while
-- leased), -2 not in flight
local function check_lease(K, m, tok)
  if m == nil then
    if lease_deleted(K, tok) then return -1 end
    return 0
  end
  if tok ~= "" and (m.st ~= "i" or m.t ~= tok) then return -1 end
  if m.st ~= "i" then return -2 end
  return 1
end

-- a popped ready-list entry whose record does not say ready: drop it (and note that a job
-- moving out of ready has lost its entry, so an aborted move pushes a new one)
local function drop_stale(K, id, raw)
  if (tonumber(rcall("HGET", K[INFO], "stale")) or 0) > 0 then count(K, "stale", -1) end
  if raw and string.sub(raw, 1, 2) == "m|" then
    local m = parse(raw)
    if m and m.ep then
      m.ep = nil
      save(K, id, m)
    end
  end
end

-- the earliest time something is due (lease deadline, delayed job, TTL, idempotency key)
local function next_due(K)
  local first = nil
  local function consider(s)
    if first == nil or s < first then first = s end
  end
  for _, key in ipairs({K[DELAYED], K[TTL], K[IDEM]}) do
    local f = rcall("ZRANGE", key, 0, 0, "WITHSCORES")
    if #f > 0 then consider(tonumber(f[2])) end
  end
  local f = rcall("ZRANGE", K[INFLIGHT], -1, -1, "WITHSCORES")
  if #f > 0 then consider(-tonumber(f[2])) end
  return first
end

-- ready-list entries from position i (0 = head, the next to pop) towards the tail, at most n
local function from_head(key, i, n)
  local got = rcall("LRANGE", key, -(i + n), -(i + 1))
  local out = {}
  for j = #got, 1, -1 do out[#out + 1] = got[j] end
  return out
end

-- call records: a mutating call carries a call id; its reply is recorded in K[CALLS] (call id ->
-- JSON reply; K[CALLTIMES]: call id -> server time) and a retry with the same id gets the
-- recorded reply without acting again. A record that does not decode is an unknown outcome
-- (QSUNKNOWN), never a guess. The call id argument is "<id>" or "<id>|<id1>,<id2>,...": the
-- listed ids are the client's earlier calls whose replies it received (no retry of them can
-- come any more), and their records are deleted (forgotten on receipt). Records a client never
-- lists (it died, or a reply was lost) are pruned: the last CALL_MAX calls of at most
-- CALL_WINDOW seconds ago are kept.
local CALL_WINDOW, CALL_MAX, CALL_PRUNE = 60, 100000, 64
local function forget_calls(K, ids)
  if #ids > 0 then
    rcall("HDEL", K[CALLS], unpack(ids))
    rcall("ZREM", K[CALLTIMES], unpack(ids))
  end
end
-- the call id of a call id argument, and the listed ids (a string, or nil)
local function call_arg(arg)
  local bar = string.find(arg, "|", 1, true)
  if not bar then return arg, nil end
  return string.sub(arg, 1, bar - 1), string.sub(arg, bar + 1)
end
-- a reply of per-job statuses (1, 0, -1, -2) is recorded as "#" and a character each: JSON
-- would format every number (about 2,000 instructions each)
local STATUS_CHAR = {[1] = "1", [0] = "0", [-1] = "L", [-2] = "N"}
local CHAR_STATUS = {[49] = 1, [48] = 0, [76] = -1, [78] = -2}
local function packed_statuses(reply)
  local n = #reply
  if n == 0 then return nil end
  local chars = {"#"}
  for j = 1, n do
    local c = STATUS_CHAR[reply[j]]
    if c == nil then return nil end
    chars[j + 1] = c
  end
  return table.concat(chars)
end
local function unpack_statuses(rec)
  local out = {}
  for j = 2, #rec do
    local v = CHAR_STATUS[string.byte(rec, j)]
    if v == nil then return redis.error_reply("QSUNKNOWN call record is unreadable") end
    out[j - 1] = v
  end
  return out
end
-- the recorded reply of call arg (nil: not recorded); deletes the records arg lists. as_chars:
-- a record of statuses comes back as recorded ("#" and a character a job), for a call whose
-- reply is that string. A record found is written again, unchanged: the retried call then
-- replicates a write, so a WAIT / WAITAOF after it on its (new) connection covers the first
-- run's writes (some servers move a connection's WAIT offset only when its own commands
-- replicate; a retry answered without a write would be confirmed at once)
local function recalled(K, arg, as_chars)
  if arg == nil or arg == "" then return nil end
  local cid, listed = call_arg(arg)
  if listed then
    local ids = {}
    for id in string.gmatch(listed, "[^,]+") do ids[#ids + 1] = id end
    forget_calls(K, ids)
  end
  if cid == "" then return nil end
  local rec = rcall("HGET", K[CALLS], cid)
  if not rec then return nil end
  rcall("HSET", K[CALLS], cid, rec)
  if string.byte(rec, 1) == 35 then -- "#"
    if not as_chars then return unpack_statuses(rec) end
    if string.find(rec, "^#[10LN]*$") then return rec end
    return redis.error_reply("QSUNKNOWN call record is unreadable")
  end
  local ok, v = pcall(cjson.decode, rec)
  if not ok or type(v) ~= "table" then
    return redis.error_reply("QSUNKNOWN call record " .. cid .. " is unreadable")
  end
  return v
end
-- old records are pruned on about one call in 8 (picked by the last two bytes of its id: call
-- ids end with a counter's hex digits, a lease token prefix with one and "."), up to
-- CALL_PRUNE at a time: eight times the rate at which calls add records, at two commands less
-- for the other calls
local function prune_turn(cid)
  local n = #cid
  return (string.byte(cid, n) + string.byte(cid, n > 1 and n - 1 or n)) % 8 == 0
end
-- record reply (a Lua table of strings and numbers, or statuses as a string: "#" and a
-- character a job) as the outcome of call arg; returns reply
local function record(K, arg, reply, now)
  if arg == nil or arg == "" then return reply end
  local cid = call_arg(arg)
  if cid == "" then return reply end
  if prune_turn(cid) then
    local oldest = rcall("ZRANGE", K[CALLTIMES], 0, 0, "WITHSCORES")
    if oldest[2] and tonumber(oldest[2]) < now - CALL_WINDOW then
      forget_calls(K, rcall("ZRANGEBYSCORE", K[CALLTIMES], "-inf", fmt(now - CALL_WINDOW), "LIMIT", 0, CALL_PRUNE))
    end
    local over = rcall("ZCARD", K[CALLTIMES]) - CALL_MAX
    if over > 0 then forget_calls(K, rcall("ZRANGE", K[CALLTIMES], 0, math.min(over, CALL_PRUNE) - 1)) end
  end
  if type(reply) == "string" then
    rcall("HSET", K[CALLS], cid, reply)
  else
    rcall("HSET", K[CALLS], cid, packed_statuses(reply) or cjson.encode(reply))
  end
  rcall("ZADD", K[CALLTIMES], NOW_SEC or fmt(math.floor(now)), cid)
  return reply
end

-- the queue's new home when a migration sealed this store (the "home" field of the queue's
-- migration record, K[MIGRATION]): a storing script then answers "QSMOVED <home>" instead of
-- storing, and the library sends the call there
local function moved_to(K)
  return rcall("HGET", K[MIGRATION], "home")
end

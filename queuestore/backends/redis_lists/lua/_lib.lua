-- queuestore lists library: shared by every lists script (prepended after the prelude and
-- the generated preamble, which declares the key-block indexes JOBS, META, READY, DELAYED,
-- INFLIGHT, DEAD, TTL, SEQ, WAKE, IDEM and STATE_SET from layout.py's KEY_SUFFIXES).
local PRIO_SPAN = 10000000000000 -- 1e13: ready score = (9 - priority) * PRIO_SPAN + seq
local WAKE_MAX = 64

local function now_s()
  local t = rcall("TIME")
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- numbers go to redis as exact strings (Lua's default conversion keeps only 14 digits)
local function fmt(n)
  return string.format("%.17g", n)
end

-- a job's mutable state (msgpack); nil when missing or not ours
local function unpack_meta(raw)
  if not raw then return nil end
  local ok, m = pcall(cmsgpack.unpack, raw)
  if ok and type(m) == "table" and type(m.st) == "string" then return m end
  return nil
end

local function save_meta(K, id, m)
  rcall("HSET", K[META], id, cmsgpack.pack(m))
end

-- the score of a job in the set of state st, derived from its meta
local function score_of(m, st)
  if st == "r" then return (9 - (tonumber(m.p) or 0)) * PRIO_SPAN + m.q end
  if st == "d" then return m.av or 0 end
  if st == "i" then return m.dl or 0 end
  return m.q or 0
end

-- place a job in state st (meta first, then its set: every prefix is recoverable);
-- keep_seq reuses the job's sequence number (restores keep their position)
local function place(K, id, m, st, keep_seq)
  if (st == "r" or st == "x") and not (keep_seq and m.q) then m.q = rcall("INCR", K[SEQ]) end
  if st == "r" then m.av = nil end
  m.st = st
  save_meta(K, id, m)
  rcall("ZADD", K[STATE_SET[st]], fmt(score_of(m, st)), id)
  if (st == "r" or st == "d") and m.x then
    rcall("ZADD", K[TTL], fmt(m.x), id)
  else
    rcall("ZREM", K[TTL], id)
  end
end

-- remove a job's entry from the set of state old (unless it was just placed there)
local function unlist(K, id, old, new)
  local set = STATE_SET[old]
  if set and old ~= new then rcall("ZREM", K[set], id) end
end

local function wait_or_ready(K, id, m, now, keep_seq)
  if m.av and m.av > now then place(K, id, m, "d", keep_seq) else place(K, id, m, "r", keep_seq) end
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
  wait_or_ready(K, id, m, now, false)
  return true
end

-- garbage in our keys (meta that does not decode): dead-letter the id with a reason
local function bury_garbage(K, id, reason, now)
  local m = {st = "x", p = 0, mr = 0, rc = 0, a = 0}
  kill(K, id, m, reason, now)
  for _, set in ipairs({READY, DELAYED, INFLIGHT}) do rcall("ZREM", K[set], id) end
end

local function wake(K, n)
  if n <= 0 then return end
  if n > WAKE_MAX then n = WAKE_MAX end
  local tokens = {}
  for i = 1, n do tokens[i] = "1" end
  rcall("RPUSH", K[WAKE], unpack(tokens))
  rcall("LTRIM", K[WAKE], -WAKE_MAX, -1)
end

-- guard shared by ack / nack / extend / move: 1 ok, 0 unknown, -1 lease lost, -2 not in flight
local function check_lease(m, tok)
  if m == nil then return 0 end
  if tok ~= "" and (m.st ~= "i" or m.t ~= tok) then return -1 end
  if m.st ~= "i" then return -2 end
  return 1
end

-- Lease up to ARGV[1] ready jobs, after the sweep if it is due (reclaim expired leases, promote
-- due delayed jobs, drop waiting jobs past their TTL, forget old idempotency keys; each bounded
-- by ARGV[3]) and after adopting up to ARGV[3] plain-producer entries of the `ready` list.
-- Never blocks. ARGV[1] = 0 is a sweep only (the maintenance loop, peek).
-- KEYS: the standard key block.
-- ARGV: count, visibility (s), sweep limit, bury limit, lease token prefix (the n-th job leased
-- by this call gets the token prefix .. n; the prefix is unique per call and is the call id:
-- "" for a sweep only; it may list calls whose records to forget, see call_arg), force sweep (1/0).
-- Returns {reclaimed, dead, promoted, expired, buried, seconds until next due or "",
-- lease deadline, id, body, record, ...}. A retried call (same prefix) returns the jobs its first
-- run leased that are still leased under its tokens, and leases nothing more.
local K = KEYS
local want, vis, limit, bury_limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local prefix, force = call_arg(ARGV[5]), ARGV[6] == "1"
local prior = recalled(K, ARGV[5])
if prior then
  if prior.err then return prior end
  local out = {0, 0, 0, 0, 0, "", prior.dl or "0"}
  local ids = type(prior.ids) == "table" and prior.ids or {}
  for j, id in ipairs(ids) do
    local raw = rcall("HGET", K[META], id)
    local t = raw and string.match(raw, "^i|%d*|([^|]*)|")
    local body = rcall("HGET", K[JOBS], id)
    if t == prefix .. j and body then
      out[#out + 1] = id
      out[#out + 1] = body
      out[#out + 1] = raw
    end
  end
  return out
end
local now = now_s()
local reclaimed, dead, promoted, expired, buried = 0, 0, 0, 0, 0
local NE_FIELD, POP_FIELD = ne_fields(), pop_fields()
local fields = {"due"}
for p = PRIO_MAX, PRIO_MIN, -1 do fields[#fields + 1] = NE_FIELD[p] end
local info = rcall("HMGET", K[INFO], unpack(fields))
local due = tonumber(info[1])

local function sweep()
  local c = sweep_due(K, now, limit, true) -- reclaim, promote, expire, in ready order (_lib)
  reclaimed, dead, promoted, expired, buried = c.reclaimed, c.dead, c.promoted, c.expired, c.buried
  due = c.due
end

-- plain producers: JSON objects LPUSHed onto the `ready` list, adopted in arrival order
local function new_id()
  while true do
    local id = "plain-" .. rcall("HINCRBY", K[INFO], "seq", 1)
    if rcall("HEXISTS", K[META], id) == 0 then return id end
  end
end

local function opt_int(v, lo, hi)
  if v == nil or v == cjson.null then return true, nil end
  if type(v) ~= "number" or v ~= math.floor(v) or v < lo or v > hi then return false, nil end
  return true, v
end

-- true when s is UTF-8 that a strict decoder takes: no overlong form, no surrogate, nothing
-- past U+10FFFF, no cut sequence (lua-cjson passes the raw bytes of a JSON string through).
-- An ASCII string is told by one search; only other strings are walked byte by byte
local function utf8_valid(s)
  if not string.find(s, "[\128-\255]") then return true end
  local byte, i, n = string.byte, 1, #s
  while i <= n do
    local c = byte(s, i)
    if c < 128 then
      i = i + 1
    else
      local more, lo, hi -- continuation bytes, and the range of the first of them
      if c >= 0xC2 and c <= 0xDF then more, lo, hi = 1, 0x80, 0xBF
      elseif c == 0xE0 then more, lo, hi = 2, 0xA0, 0xBF
      elseif c == 0xED then more, lo, hi = 2, 0x80, 0x9F
      elseif c >= 0xE1 and c <= 0xEF then more, lo, hi = 2, 0x80, 0xBF
      elseif c == 0xF0 then more, lo, hi = 3, 0x90, 0xBF
      elseif c >= 0xF1 and c <= 0xF3 then more, lo, hi = 3, 0x80, 0xBF
      elseif c == 0xF4 then more, lo, hi = 3, 0x80, 0x8F
      else return false end
      if i + more > n then return false end
      local b = byte(s, i + 1)
      if b < lo or b > hi then return false end
      for k = i + 2, i + more do
        b = byte(s, k)
        if b < 0x80 or b > 0xBF then return false end
      end
      i = i + more + 1
    end
  end
  return true
end

local function adopt(entry)
  local ok, e = pcall(cjson.decode, entry)
  local why, id, p, mr = nil, nil, PRIO_MIN, 3
  if not ok or type(e) ~= "table" or e[1] ~= nil then
    why = "not a JSON object"
  elseif e.payload == nil then
    why = "no payload"
  else
    local good
    if e.id ~= nil and e.id ~= cjson.null then
      if type(e.id) ~= "string" or e.id == "" or #e.id > 512 then
        why = "id must be a non-empty string"
      elseif not utf8_valid(e.id) then -- no consumer could decode it
        why = "id must be valid UTF-8"
      end
      id = e.id
    end
    if e.type ~= nil and e.type ~= cjson.null then
      if type(e.type) ~= "string" then
        why = "type must be a string"
      elseif not utf8_valid(e.type) then
        why = "type must be valid UTF-8"
      end
    end
    good, p = opt_int(e.priority, PRIO_MIN, PRIO_MAX)
    if not good then why = "priority must be an integer " .. PRIO_MIN .. ".." .. PRIO_MAX end
    good, mr = opt_int(e.max_retries, 0, 1000000)
    if not good then why = "max_retries must be an integer >= 0" end
  end
  if why or id == nil then id = new_id() end
  if not why and rcall("HEXISTS", K[META], id) == 1 then return end -- stored already: a no-op
  rcall("HSET", K[JOBS], id, "\0qsp1" .. fmt(now) .. "\n" .. entry)
  local m = {p = p or PRIO_MIN, mr = mr or 3, rc = 0, a = 0}
  if why then
    m.le = "malformed plain entry: " .. why
    kill(K, id, m, m.le, now)
    buried = buried + 1
  else
    place(K, id, m, "r", false)
  end
end

if force or due == nil or due <= now then sweep() end

-- lease: pop ids from the highest priority down; the record is the truth (stale entries dropped)
local ids, leased, dropped = {}, 0, 0
local tok_at = now + vis
local dl = fmt(tok_at)
local head = "|" .. fmt(now) .. "|" .. dl .. "|"
local score = lease_score(tok_at)
-- the reply: the counts (set at the end), then id, body, record per leased job
local res = {0, 0, 0, 0, 0, "", dl}
-- the next attempt number, without a number-to-string conversion in the common cases
local NEXT_ATTEMPT = {["0"] = "1", ["1"] = "2", ["2"] = "3", ["3"] = "4", ["4"] = "5"}
-- the header of a ready job never leased (no attempt, token, start or deadline yet)
local FRESH, find, sub = "r|0||||", string.find, string.sub
-- the n-th lease's token suffix, written out for a batch (a number is converted to a string
-- with a sprintf each)
local NTH = want > 4 and nth_strings() or {"1", "2", "3", "4"}

-- an id that two entries name (a stale entry left by a job that left the list by id, and the
-- entry of the job stored again under that id) is leased once per call: leases first .. leased
-- (their in-flight entries written, their records not yet) keep the first of each id, in this
-- batch or an earlier one; a later one is dropped as a stale entry, and the leases after it
-- are renumbered (token, reply, call record). Returns the HSET arguments of the leases kept.
-- Rare (the in-flight set already held one of the batch's ids), so it may rebuild what it keeps.
local function drop_repeats(first)
  local seen, hargs, kept = {}, {}, first - 1
  for j = 1, first - 1 do seen[ids[j]] = true end
  local at = 7 + 3 * (first - 1) -- the reply's triples before this batch's
  local triples = {}
  for j = first, leased do triples[#triples + 1] = {res[at + 1], res[at + 2], res[at + 3]} at = at + 3 end
  for i = at - 3 * #triples + 1, #res do res[i] = nil end
  for j = first, leased do ids[j] = nil end
  at = 7 + 3 * (first - 1)
  for _, t in ipairs(triples) do
    local id, body, rec = t[1], t[2], t[3]
    if seen[id] then
      drop_stale(K, id, nil)
      dropped = dropped + 1
    else
      seen[id] = true
      kept = kept + 1
      local a, rest = string.match(rec, "^i|(%d*)|[^|]*(|.*)$")
      rec = "i|" .. a .. "|" .. prefix .. kept .. rest
      ids[kept] = id
      res[at + 1], res[at + 2], res[at + 3] = id, body, rec
      at = at + 3
      hargs[#hargs + 1] = id
      hargs[#hargs + 1] = rec
    end
  end
  leased = kept
  return hargs
end

-- lease the jobs of the entries read at the head of one list (the head last, as LRANGE reads
-- it): the in-flight entries and records are written here, before the caller drops the entries
local function take(got)
  local first = leased + 1
  local raws = rcall("HMGET", K[META], unpack(got))
  local bodies = rcall("HMGET", K[JOBS], unpack(got))
  local hargs, zargs, r, h = {}, {}, #res, 0
  for k = #got, 1, -1 do
    local id, raw, body = got[k], raws[k], bodies[k]
    local a, pos = nil, nil
    if raw then
      if find(raw, FRESH, 1, true) == 1 then -- never leased: no pattern to match
        a, pos = "0", 8
      else
        a, pos = string.match(raw, "^r|(%d*)|[^|]*|[^|]*|[^|]*|()")
      end
    end
    if a and body then
      leased = leased + 1
      ids[leased] = id
      local rec = "i|" .. (NEXT_ATTEMPT[a] or ((tonumber(a) or 0) + 1)) .. "|" .. prefix .. (NTH[leased] or leased) ..
        head .. sub(raw, pos)
      hargs[h + 1], hargs[h + 2] = id, rec
      zargs[h + 1], zargs[h + 2] = score, id
      res[r + 1], res[r + 2], res[r + 3] = id, body, rec
      h, r = h + 2, r + 3
    elseif a then
      local m = parse(raw)
      if m then
        m.le = "job body is missing"
        kill(K, id, m, m.le, now)
      else
        bury_garbage(K, id, "corrupt or missing job metadata", now)
      end
      buried = buried + 1
      dropped = dropped + 1
    elseif raw and parse(raw) == nil then
      bury_garbage(K, id, "corrupt or missing job metadata", now)
      buried = buried + 1
      dropped = dropped + 1
    else
      drop_stale(K, id, raw)
      dropped = dropped + 1
    end
  end
  if leased < first then return end
  -- one score for the call; fewer than 16 ids are added in descending order: each new entry is
  -- the lowest (score, then id), so it goes to the head of a small set (see lease_score); more
  -- go into a skiplist (zadd_batch), which orders them itself: they are not sorted here
  if leased - first < 15 then
    local sorted = {}
    for j = first, leased do sorted[#sorted + 1] = ids[j] end
    table.sort(sorted)
    zargs = {}
    for j = #sorted, 1, -1 do
      zargs[#zargs + 1] = score
      zargs[#zargs + 1] = sorted[j]
    end
  end
  if zadd_batch(K[INFLIGHT], zargs) < leased - first + 1 then
    hargs = drop_repeats(first) -- an id in flight already: maybe leased twice by this call
  end
  bulk("HSET", K[META], hargs)
end

local plain = head_entries(K[READY], limit)
for _, entry in ipairs(plain) do adopt(entry) end
drop_head(K[READY], #plain)
for p = PRIO_MAX, PRIO_MIN, -1 do
  if info[PRIO_MAX - p + 2] or MARKED[K[READY0 + p]] then
    while leased < want and dropped <= limit + bury_limit do
      local n = math.min(want - leased, BULK) -- ids a command takes unpacked
      local got = rcall("LRANGE", K[READY0 + p], -n, -1)
      if #got > 0 then take(got) end
      drop_head(K[READY0 + p], #got)
      count(K, POP_FIELD[p], #got)
      if #got < n then
        rcall("HDEL", K[INFO], NE_FIELD[p]) -- found empty
        break
      end
    end
  end
end

res[1], res[2], res[3], res[4], res[5] = reclaimed, dead, promoted, expired, buried
if leased > 0 then
  record(K, prefix, {dl = dl, ids = ids}, now)
  if due and tok_at < due then
    due = tok_at
    rcall("HSET", K[INFO], "due", dl)
  end
end

-- wake other waiters: for what the sweep made ready, and to keep a chain going while work may remain
-- (the chain token only when none is waiting: a waiting token means nobody is blocked)
local woken = reclaimed + promoted
if woken == 0 and leased > 0 and leased == want then
  if rcall("LLEN", K[WAKE]) == 0 then wake(K, 1) end
else
  wake(K, woken)
end

if due and due < 1e299 then
  local secs = due - now
  if secs < 0 then secs = 0 end
  res[6] = fmt(secs)
end
return res

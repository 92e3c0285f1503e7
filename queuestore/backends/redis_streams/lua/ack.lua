-- streams/ack: ack a batch of leased jobs (ack_many, and coalesced ack calls).
-- KEYS: 1 stream, 2 idx, 3 delayed, 4 parked bodies, 5 parked meta, 6 ttl, 7 dead, 8 counters,
--       9 leases, 10 call records, 11 call record times
-- ARGV: 1 call id ("" = not recorded), 2 retention (0/1), 3 queue, then runs of jobs whose
--       lease tokens share group, consumer and deliveries: "group, consumer, deliveries, k",
--       then the k entry ids, then the k job ids in the same order (a bare id: consumer,
--       deliveries and entry id "").
-- Returns {statuses}: one character per job, in the order given: "1" acked, "0" not found /
-- not in flight, "L" lease lost. The reply is recorded under the call id: a retried call gets
-- it without acting again.
local cid = ARGV[1]
retention, queue = ARGV[2] == "1", ARGV[3]
local prior = recalled(cid)
if prior then return prior end

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

-- the ack of one take's jobs as ack_many sends a dequeue_many's batch, read straight from ARGV
-- (no table per job): one run of k jobs of the stream's only group, delivered once, in entry id
-- order, every entry id as the server writes it with a 13-digit millisecond part (checked at
-- once over all of them), each job's index pointing at its token's entry, all delivered on an
-- intact stream. One command per kind for the call. Nil, with nothing written, when any of that
-- does not hold: main() then reads the call as a whole.
local function one_take(only, k)
  local e0, j0 = 8, 8 + k
  local e1, j1 = j0 - 1, j0 + k - 1
  if k > 4000 or j1 ~= #ARGV or ARGV[4] ~= only or ARGV[6] ~= "1" then return nil end
  local joined = table.concat(ARGV, ",", e0, e1) .. ","
  local rest, ids = string.gsub(joined, "[1-9]%d%d%d%d%d%d%d%d%d%d%d%d%-%d+,", "")
  if rest ~= "" or ids ~= k then return nil end
  -- no sequence part with a leading zero: every "-0" is a whole "-0," (plain finds, much
  -- cheaper than a pattern tried at every position)
  local zero = string.find(joined, "-0", 1, true)
  while zero do
    if string.byte(joined, zero + 2) ~= 44 then return nil end
    zero = string.find(joined, "-0", zero + 3, true)
  end
  local locs = rcall("HMGET", I, unpack(ARGV, j0, j1))
  local lo = ARGV[e0]
  local hi = lo
  if locs[1] ~= lo then return nil end
  -- strictly ascending (so no entry, and no job, is named twice): ids of one length compare as
  -- strings; of two lengths, the longer is the later within one millisecond, else the
  -- millisecond parts (their first 13 characters) decide as strings
  for c = 1, k - 1 do
    local eid = ARGV[e0 + c]
    if locs[c + 1] ~= eid then return nil end
    if #eid == #hi then
      if eid <= hi then return nil end
    elseif string.sub(eid, 1, 14) == string.sub(hi, 1, 14) then
      if #eid < #hi then return nil end
    elseif eid < hi then
      return nil
    end
    hi = eid
  end
  local whole, info = intact(lo)
  if not whole then return nil end
  local g = groups()[1]
  local ld = g["last-delivered-id"]
  if below(ld, string.find(ld, "-", 1, true), hi, 14) then return nil end
  rcall("XACK", S, only, unpack(ARGV, e0, e1))
  -- a take's entries have records of their own only once extended (then it has a mark)
  local consumer = ARGV[5]
  if not is_take(consumer) or rcall("ZSCORE", L, take_mark(only, consumer)) then
    local leases = {}
    for c = 0, k - 1 do leases[c + 1] = only .. US .. ARGV[e0 + c] end
    rcall("ZREM", L, unpack(leases))
  end
  if only_batch_up_to(info, g, only, hi) then
    local ms, seq = idparts(hi)
    rcall("XTRIM", S, "MINID", string.format("%d-%d", ms, seq + 1))
  else
    rcall("XDEL", S, unpack(ARGV, e0, e1))
  end
  rcall("HDEL", I, unpack(ARGV, j0, j1))
  if rcall("EXISTS", T) == 1 then rcall("ZREM", T, unpack(ARGV, j0, j1)) end
  close_take(only, consumer)
  rcall("HINCRBY", C, "acked", k)
  return {string.rep("1", k)}
end

local ACK_CHAR = {[1] = "1", [0] = "0", [-1] = "L"}
-- the ack; its reply is recorded under the call id (below)
local function main()
  -- the runs, read into lists: per job its entry id (E), job id (J) and run (R: group,
  -- consumer, deliveries)
  local gs = (not retention) and groups() or {}
  local only = #gs == 1 and gs[1].name or nil
  if only and string.match(ARGV[7] or "", "^[1-9]%d*$") then
    local reply = one_take(only, tonumber(ARGV[7]))
    if reply then return reply end
  end
  local n, E, J, R, runs, all_lean = 0, {}, {}, {}, {}, only ~= nil
  local i, last = 4, #ARGV
  while i <= last do
    local run = {ARGV[i], ARGV[i + 1], ARGV[i + 2]}
    local k = tonumber(ARGV[i + 3])
    if not (k and k >= 1 and i + 3 + 2 * k <= last) then
      return redis.error_reply("ERR malformed acks run at argument " .. i)
    end
    runs[#runs + 1] = run
    if run[1] ~= only or run[3] ~= "1" then all_lean = false end
    for a = i + 4, i + 3 + k do
      n = n + 1
      E[n], J[n], R[n] = ARGV[a], ARGV[a + k], run
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
  local ok, all_delivered = {}, false
  local whole, info = intact(lo)
  if whole then
    local ld = gs[1]["last-delivered-id"]
    local dld = string.find(ld, "-", 1, true)
    all_delivered = not below(ld, dld, hi, dhi)
    if all_delivered then
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
    if whole and all_delivered and only_batch_up_to(info, gs[1], group, hi) then
      -- the batch is the stream's head: one XTRIM frees it node by node (never when a token
      -- names an entry past the last delivered one: the trim would take the ready ones before it)
      local ms, seq = idparts(hi)
      rcall("XTRIM", S, "MINID", string.format("%d-%d", ms, seq + 1))
      if #ok < n then for _, c in ipairs(ok) do out[c] = 1 end end -- all acked: no status per job
      acked = acked + #ok
    elseif whole then
      -- every entry is still there: one XDEL for the call
      chunked("XDEL", S, eids)
      if #ok < n then for _, c in ipairs(ok) do out[c] = 1 end end -- all acked: no status per job
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

local reply = main()
if type(reply) == "table" and reply.err then return reply end
return record(cid, reply)

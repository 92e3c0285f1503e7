-- Store jobs, idempotently by id: body first, then meta, then the state's set, so a prefix
-- left by an error is completed by the retry (a stored id that is in no set is rewritten).
-- KEYS: the standard key block.
-- ARGV: mode ("enqueue" | "import"), idempotency window (s), then per job: id, body, meta, idempotency key.
-- "import" keeps a DEAD job dead (state "x" in its meta); "enqueue" places by available_at.
-- Returns one integer per job: 1 stored, 0 already stored (id, or key within the window).
local K = KEYS
local mode, window = ARGV[1], tonumber(ARGV[2])
local now = now_s()
local out, woken = {}, 0

local function stored(id)
  local m = unpack_meta(rcall("HGET", K[META], id))
  if m == nil then return false end
  local set = STATE_SET[m.st]
  if set == nil then return true end -- held by a migration or moving: present
  return rcall("ZSCORE", K[set], id) ~= false
end

for i = 3, #ARGV, 4 do
  local id, body, raw, key = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local res = 0
  if not stored(id) then
    local live = key ~= "" and tonumber(rcall("ZSCORE", K[IDEM], key) or "0") > now
    if not live then
      local m = cmsgpack.unpack(raw)
      if key ~= "" then rcall("ZADD", K[IDEM], fmt(now + window), key) end
      rcall("HSET", K[JOBS], id, body)
      if mode == "import" and m.st == "x" then
        place(K, id, m, "x", false)
      else
        m.t, m.dl = nil, nil
        wait_or_ready(K, id, m, now, false)
        if m.st == "r" then woken = woken + 1 end
      end
      res = 1
    end
  end
  out[#out + 1] = res
end
wake(K, woken)
return out

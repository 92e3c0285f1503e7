-- queuestore strict-keys prelude: fail on any key argument not passed in KEYS,
-- and on any command whose key positions are not known here.
-- The errors are raised as strings: KeyDB's script error handler cannot
-- concatenate an error table ({err = ...}) and replaces its message with its own.
local __declared = {}
for _, k in ipairs(KEYS) do __declared[k] = true end
-- command -> {first key index, last key index (-1 = all), step}
local __spec = {
  GET={1,1,1}, SET={1,1,1}, SETNX={1,1,1}, SETEX={1,1,1}, PSETEX={1,1,1}, GETDEL={1,1,1},
  DEL={1,-1,1}, UNLINK={1,-1,1}, EXISTS={1,-1,1}, MGET={1,-1,1}, MSET={1,-1,2},
  EXPIRE={1,1,1}, PEXPIRE={1,1,1}, PEXPIREAT={1,1,1}, TTL={1,1,1}, PTTL={1,1,1}, TYPE={1,1,1},
  PERSIST={1,1,1},
  INCR={1,1,1}, INCRBY={1,1,1}, DECR={1,1,1}, DECRBY={1,1,1},
  HGET={1,1,1}, HSET={1,1,1}, HSETNX={1,1,1}, HDEL={1,1,1}, HMGET={1,1,1}, HMSET={1,1,1},
  HGETALL={1,1,1}, HEXISTS={1,1,1}, HLEN={1,1,1}, HINCRBY={1,1,1}, HKEYS={1,1,1}, HVALS={1,1,1},
  LPUSH={1,1,1}, RPUSH={1,1,1}, LPOP={1,1,1}, RPOP={1,1,1}, LLEN={1,1,1}, LRANGE={1,1,1},
  LINDEX={1,1,1}, LREM={1,1,1}, LSET={1,1,1}, LTRIM={1,1,1}, LPOS={1,1,1}, LINSERT={1,1,1},
  LMOVE={1,2,1}, RPOPLPUSH={1,2,1},
  ZADD={1,1,1}, ZREM={1,1,1}, ZRANGE={1,1,1}, ZRANGEBYSCORE={1,1,1}, ZREVRANGE={1,1,1},
  ZREVRANGEBYSCORE={1,1,1}, ZCARD={1,1,1}, ZSCORE={1,1,1}, ZMSCORE={1,1,1}, ZCOUNT={1,1,1},
  ZPOPMIN={1,1,1}, ZPOPMAX={1,1,1}, ZRANK={1,1,1}, ZREVRANK={1,1,1}, ZREMRANGEBYSCORE={1,1,1},
  ZREMRANGEBYRANK={1,1,1}, ZINCRBY={1,1,1},
  SADD={1,1,1}, SREM={1,1,1}, SISMEMBER={1,1,1}, SCARD={1,1,1}, SMEMBERS={1,1,1},
  XADD={1,1,1}, XACK={1,1,1}, XDEL={1,1,1}, XLEN={1,1,1}, XRANGE={1,1,1}, XREVRANGE={1,1,1},
  XCLAIM={1,1,1}, XAUTOCLAIM={1,1,1}, XPENDING={1,1,1}, XTRIM={1,1,1},
  XINFO={2,2,1}, XGROUP={2,2,1},
  TIME={0,0,0},
}
local function __check(cmd, args)
  local name = string.upper(cmd)
  if name == "XREADGROUP" or name == "XREAD" then
    for i = 1, #args do
      if string.upper(tostring(args[i])) == "STREAMS" then
        local n = (#args - i) / 2
        for j = i + 1, i + n do
          if not __declared[args[j]] then
            error("STRICTKEYS undeclared key " .. tostring(args[j]) .. " in " .. name)
          end
        end
        return
      end
    end
    error("STRICTKEYS no STREAMS in " .. name)
  end
  local spec = __spec[name]
  if spec == nil then error("STRICTKEYS command " .. name .. " has no key spec") end
  if spec[1] == 0 then return end
  local last = spec[2]
  if last < 0 then last = #args end
  for i = spec[1], last, spec[3] do
    if args[i] == nil or not __declared[args[i]] then
      error("STRICTKEYS undeclared key " .. tostring(args[i]) .. " in " .. name)
    end
  end
end
local function rcall(cmd, ...)
  __check(cmd, {...})
  return redis.call(cmd, ...)
end
local function rpcall(cmd, ...)
  __check(cmd, {...})
  return redis.pcall(cmd, ...)
end

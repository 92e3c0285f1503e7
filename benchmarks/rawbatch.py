"""Raw batch drains: the plain redis-py code a batched ``dequeue_many(100)`` + ``ack_many`` is
measured against, on data of the same size, for the server's side of the comparison.

* **Lists scripts**: ids in a list, bodies in a hash. A take script pops 100 ids (``RPOP n``),
  adds them to a lease zset in one ``ZADD`` and returns them and their bodies (``HMGET``); an
  ack script removes them from the zset (``ZREM``) and their bodies (``HDEL``). No state,
  attempt, TTL, call record or guard of any kind. The ids go into the zset in descending order:
  with one score for all, each then goes to the head of a small (listpack) zset instead of
  walking it (what the backends do too; in ascending or random order the ``ZADD`` costs about
  three times as much).
* **Streams** (the harness's ``dequeue_many`` ceiling for redis-streams): ``XREADGROUP COUNT
  100`` then one script that does ``XACK`` and ``XDEL`` of the ids read (an acked job leaves the
  stream, as it leaves the backend), on entries with the fields the streams backend writes.

Each ``fill_*`` loads ``n`` jobs and returns what its ``drain_*`` needs; the drains send
exactly the commands named above, so the server's time in them (``INFO commandstats``) or its
instructions (``benchmarks.instrcost``) are theirs alone.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

__all__ = ["LISTS_COMMANDS", "STREAMS_COMMANDS", "drain_lists", "drain_stream", "fill_lists", "fill_stream"]

TAKE = """
local ids = redis.call('RPOP', KEYS[1], ARGV[2])
if not ids then return {} end
local sorted, z = {unpack(ids)}, {}
table.sort(sorted, function(a, b) return a > b end)
for i, id in ipairs(sorted) do z[2 * i - 1] = ARGV[1]; z[2 * i] = id end
redis.call('ZADD', KEYS[2], unpack(z))
local bodies = redis.call('HMGET', KEYS[3], unpack(ids))
return {ids, bodies}
"""
ACK = """
local n = redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
return n
"""
XACKDEL = """
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
"""
#: the commandstats entries of what the drains send (a script's time includes its commands')
LISTS_COMMANDS = ("cmdstat_evalsha",)
STREAMS_COMMANDS = ("cmdstat_xreadgroup", "cmdstat_evalsha")
_BODY = b"\x82" + b"x" * 230


async def fill_lists(r: Any, n: int) -> tuple[str, str, str, str, str]:
    """``n`` ids in a list and their bodies in a hash; the two scripts loaded."""
    base = f"{{raw-{uuid.uuid4().hex[:12]}}}"
    ready, leases, bodies = f"{base}:ready", f"{base}:leases", f"{base}:bodies"
    for i in range(0, n, 1000):
        ids = [uuid.uuid4().hex for _ in range(min(1000, n - i))]
        await r.hset(bodies, mapping=dict.fromkeys(ids, _BODY))
        await r.lpush(ready, *ids)
    return ready, leases, bodies, await r.script_load(TAKE), await r.script_load(ACK)


async def drain_lists(r: Any, keys: tuple[str, str, str, str, str]) -> int:
    """Take and ack 100 at a time until the list is empty; returns the jobs acked."""
    ready, leases, bodies, take, ack = keys
    done = 0
    while got := await r.evalsha(take, 3, ready, leases, bodies, repr(time.time() + 30), 100):
        ids = got[0]
        done += int(await r.evalsha(ack, 2, leases, bodies, *ids))
    await r.delete(ready, leases, bodies)
    return done


async def fill_stream(r: Any, n: int) -> tuple[str, str]:
    """``n`` entries with the streams backend's fields, and a consumer group at the start; the
    ack script loaded."""
    key = f"{{raw-{uuid.uuid4().hex[:12]}}}:s"
    for i in range(0, n, 1000):
        pipe = r.pipeline(transaction=False)
        for _ in range(min(1000, n - i)):
            pipe.xadd(key, {"j": uuid.uuid4().hex, "b": _BODY, "r": 0, "m": 3, "a": 0, "x": 0})
        await pipe.execute()
    await r.xgroup_create(key, "g", "0")
    return key, await r.script_load(XACKDEL)


async def drain_stream(r: Any, keys: tuple[str, str]) -> int:
    """XREADGROUP COUNT 100, then XACK + XDEL of what it read (one script), until nothing is
    left; returns the jobs acked."""
    key, ackdel = keys
    done = 0
    while got := await r.execute_command("XREADGROUP", "GROUP", "g", "c", "COUNT", 100, "STREAMS", key, ">"):
        done += int(await r.evalsha(ackdel, 1, key, "g", *[e[0] for e in got[0][1]]))
    await r.delete(key)
    return done

"""Fault injectors: each runs beside the load until ``stop`` is set and returns how many faults
it injected. They act on the real server process (SIGSTOP, kill -9), on its connections
(``CLIENT KILL``, the reply-dropping proxy), on its script cache, or on the queue's own keys."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import msgspec
import redis.asyncio as aredis
from redis.exceptions import RedisError

from queuestore.backends.redis_lists.layout import ListsLayout
from queuestore.testing import RedisServer

from ..proxy import Fault, FaultProxy

__all__ = ["INJECTORS", "FaultContext", "Injector", "any_script", "lists_garbage_left"]


@dataclass
class FaultContext:
    """What an injector may act on."""

    server: RedisServer | None
    proxy: FaultProxy | None
    stop: anyio.Event
    rng: random.Random
    #: the backend's keys, for garbage: ``StreamKeys`` (redis-streams) or ``ListsLayout`` (redis-lists)
    keys: Any = None
    #: the ids the lists garbage writer used (records, list entries, set members)
    garbage_ids: list[str] = field(default_factory=list)
    #: ``server`` is the node of a Redis Cluster that owns the queue's slot
    on_cluster: bool = False


Injector = Callable[[FaultContext], Awaitable[int]]


async def _pause(ctx: FaultContext, low: float, high: float) -> bool:
    """Sleep a random while; False once ``stop`` is set."""
    with anyio.move_on_after(ctx.rng.uniform(low, high)):
        await ctx.stop.wait()
    return not ctx.stop.is_set()


def _client(server: RedisServer) -> aredis.Redis:
    return aredis.Redis(host=server.host, port=server.port, socket_timeout=2.0, socket_connect_timeout=2.0)


def any_script(args: list[bytes]) -> bool:
    """A script call, or the EXEC of a transaction (a batch take of redis-streams: its entries
    come back in EXEC's reply)."""
    return bool(args) and args[0].upper() in (b"EVALSHA", b"EVAL", b"EXEC")


async def proxy_faults(ctx: FaultContext) -> int:
    """Swallow the reply of, or reset the connection after, one of the next few script calls;
    once it fired, wait 50-150 ms and arm the next one."""
    assert ctx.proxy is not None
    armed: list[Fault] = []
    while await _pause(ctx, 0.05, 0.15):
        skip = ctx.rng.randint(0, 3)
        arm = ctx.proxy.drop_reply if ctx.rng.random() < 0.5 else ctx.proxy.reset_after
        fault = arm(any_script, skip=skip)
        armed.append(fault)
        while fault.hits == 0 and not ctx.stop.is_set():
            await anyio.sleep(0.01)
    for fault in armed:  # disarm what did not fire
        fault.times = fault.hits
    return sum(f.hits for f in armed)


async def sigstop(ctx: FaultContext) -> int:
    """Freeze the server (SIGSTOP) for longer than the clients' ``read_timeout``, again and again."""
    assert ctx.server is not None
    stalls = 0
    while await _pause(ctx, 0.2, 0.5):
        ctx.server.pause()
        stalls += 1
        try:
            await anyio.sleep(ctx.rng.uniform(0.6, 1.3))
        finally:
            ctx.server.resume()
    return stalls


async def client_kill(ctx: FaultContext) -> int:
    """``CLIENT KILL TYPE normal SKIPME yes`` every 50-200 ms: every connection but this one."""
    assert ctx.server is not None
    killed = 0
    async with _client(ctx.server) as admin:
        while await _pause(ctx, 0.05, 0.2):
            killed += await admin.client_kill_filter(_type="normal", skipme=True)
    return killed


async def kill9(ctx: FaultContext) -> int:
    """kill -9 the server (AOF, ``appendfsync always``) and start it again on the same port and
    dir. A cluster node answers ``CLUSTERDOWN`` for about 2 s after its restart (until it has
    heard from its peers): on a cluster the kills are 2.5-4 s apart, so calls get through
    between them."""
    server = ctx.server
    assert server is not None
    assert server.appendonly
    assert server.appendfsync == "always"
    kills = 0
    low, high = (2.5, 4.0) if ctx.on_cluster else (0.3, 0.8)
    while await _pause(ctx, low, high):
        server.kill()
        kills += 1
        await anyio.sleep(ctx.rng.uniform(0.1, 0.4))
        await anyio.to_thread.run_sync(server.restart)
    return kills


async def script_flush(ctx: FaultContext) -> int:
    """``SCRIPT FLUSH`` every 30-120 ms: every EVALSHA after it meets NOSCRIPT."""
    assert ctx.server is not None
    flushes = 0
    async with _client(ctx.server) as admin:
        while await _pause(ctx, 0.03, 0.12):
            await admin.script_flush()
            flushes += 1
    return flushes


async def garbage(ctx: FaultContext) -> int:
    """Write garbage into the queue's own keys (the layout of ``ctx.keys``): a redis-streams
    ``StreamKeys`` or a redis-lists ``ListsLayout``. None of it may come out as a job or stop
    the real ones."""
    if isinstance(ctx.keys, ListsLayout):
        return await _lists_garbage(ctx, ctx.keys)
    return await _streams_garbage(ctx)


def _cold(**fields: Any) -> bytes:
    """The msgpack cold part of a lists record, with whatever field types the caller gives."""
    return msgspec.msgpack.encode(fields)


async def _lists_garbage(ctx: FaultContext, layout: ListsLayout) -> int:
    """Write garbage into a redis-lists queue's keys, one kind after another: ready, due
    delayed and expired in-flight records whose cold fields have the wrong types; a ready record
    with an undecodable body; records with an unknown state code; ready-list ids with no record;
    junk strings in the plain-producer list; junk members (no record, or a record that is not
    ours) in the in-flight and delayed sets."""
    assert ctx.server is not None
    key = layout.keys.key
    meta, jobs, ready, plain = key("meta"), key("jobs"), layout.ready_key(0), key("ready")
    delayed, inflight, info = key("delayed"), key("inflight"), key("info")
    past = time.time() - 5.0
    bad_types = _cold(mr="x", p="high", rc=[1], av="soon", x="never", le=7, o=3)
    written = 0
    async with _client(ctx.server) as raw:
        while await _pause(ctx, 0.05, 0.15):
            n = written
            gid = f"garbage-{n % 9}-{n}"
            try:
                async with raw.pipeline(transaction=True) as pipe:
                    kind = n % 9
                    if kind == 0:  # ready, cold fields of the wrong types
                        pipe.hset(jobs, gid, b"\xff\x00junk")
                        pipe.hset(meta, gid, b"r|0||||" + bad_types)
                        pipe.lpush(ready, gid)
                    elif kind == 1:  # due delayed, cold fields of the wrong types
                        pipe.hset(jobs, gid, b"\xc1")
                        pipe.hset(meta, gid, b"d|0||||" + bad_types)
                        pipe.zadd(delayed, {gid: 0})
                    elif kind == 2:  # expired lease, cold fields of the wrong types
                        pipe.hset(jobs, gid, b"\xc1")
                        pipe.hset(meta, gid, b"i|1|tok|%f|%f|" % (past, past) + bad_types)
                        pipe.zadd(inflight, {gid: -past})
                    elif kind == 3:  # a well-formed record, an undecodable body
                        pipe.hset(jobs, gid, b"\xff\x00junk")
                        pipe.hset(meta, gid, b"r|0||||" + _cold(mr=0))
                        pipe.lpush(ready, gid)
                    elif kind == 4:  # unknown state codes, in a ready list and in the delayed set
                        pipe.hset(jobs, gid, b"\xc1")
                        pipe.hset(meta, gid, b"q|0||||" + _cold(mr=1))
                        pipe.lpush(ready, gid)
                        pipe.hset(meta, gid + "z", b"z|x|y|z|w|" + _cold(mr=1))
                        pipe.zadd(delayed, {gid + "z": 0})
                    elif kind == 5:  # ids in a ready list with no record
                        pipe.lpush(layout.ready_key(n % 10), gid)
                    elif kind == 6:  # junk in the plain-producer list (each malformed)
                        pipe.lpush(plain, b"\xff not json", "[1, 2]", '{"payload": 1, "priority": "high"}')
                    elif kind == 7:  # set members with no record
                        pipe.zadd(inflight, {gid + "i": -past})
                        pipe.zadd(delayed, {gid + "d": 0})
                    else:  # set members whose record is not ours
                        pipe.hset(meta, gid, b"\x00\x01 not a record")
                        pipe.zadd(inflight if n % 2 else delayed, {gid: -past if n % 2 else 0})
                    if kind in (1, 2, 4, 7, 8):  # the next storing call or dequeue sweeps now
                        pipe.hset(info, "due", "soon" if n % 2 else 0)
                    await pipe.execute()
            except RedisError:
                continue
            ctx.garbage_ids += [gid, gid + "z", gid + "i", gid + "d"]
            written += 1
    return written


async def lists_garbage_left(ctx: FaultContext, layout: ListsLayout) -> list[str]:
    """After the run and a drain: the garbage the lists writer left anywhere but the dead set
    (a record not dead, a ready-list entry, a delayed or in-flight member, a plain entry)."""
    assert ctx.server is not None
    key = layout.keys.key
    left: list[str] = []
    async with _client(ctx.server) as raw:
        if n := await raw.llen(key("ready")):
            left.append(f"{n} plain-producer entries not adopted")
        listed: set[bytes] = set()
        for p in range(10):
            listed.update(await raw.lrange(layout.ready_key(p), 0, -1))
        waiting = set(await raw.zrange(key("delayed"), 0, -1)) | set(await raw.zrange(key("inflight"), 0, -1))
        for gid in ctx.garbage_ids:
            record = await raw.hget(key("meta"), gid)
            if record is not None and not record.startswith(b"x|"):
                left.append(f"{gid}: record {record[:12]!r} is not dead")
            if gid.encode() in listed or gid.encode() in waiting:
                left.append(f"{gid}: still listed")
    return left


async def _streams_garbage(ctx: FaultContext) -> int:
    """Write garbage into the queue's own redis-streams keys: stream entries with an undecodable
    body, with no fields of ours, with non-numeric counters, a due delayed job whose parked
    body and counters are junk, and due members of the leases zset under the stream's groups
    that name no entry (one of them shaped as the mark of a take that is gone)."""
    assert ctx.server is not None
    k = ctx.keys
    written = 0
    async with _client(ctx.server) as raw:
        while await _pause(ctx, 0.05, 0.15):
            n = written
            kind = n % 5
            try:
                if kind == 0:
                    await raw.xadd(k.stream, {"j": f"garbage-b{n}", "b": b"\xff\x00junk", "r": "0", "a": "0"})
                elif kind == 1:
                    await raw.xadd(k.stream, {"zz": "not ours"})
                elif kind == 2:
                    await raw.xadd(k.stream, {"j": f"garbage-r{n}", "b": b"\x81", "r": "x", "a": "-"})
                elif kind == 3:
                    groups = [g["name"] for g in await raw.xinfo_groups(k.stream)]
                    names = [g.decode() if isinstance(g, bytes) else str(g) for g in groups]
                    members = {f"{g}\x1fnot-an-entry-{n}": 0 for g in names}
                    members.update({f"{g}\x1f+@gone{n}:worker": 0 for g in names})
                    if members:
                        await raw.zadd(k.leases, members)
                else:
                    gid = f"garbage-d{n}"
                    async with raw.pipeline(transaction=True) as pipe:
                        pipe.hset(k.parked, gid, b"\xc1junk")
                        pipe.hset(k.meta, gid, "{not json")
                        pipe.hset(k.idx, gid, "D")
                        pipe.zadd(k.delayed, {gid: 0})
                        await pipe.execute()
            except RedisError:
                continue
            written += 1
    return written


INJECTORS: dict[str, Injector] = {
    "reply-drop": proxy_faults,
    "sigstop": sigstop,
    "client-kill": client_kill,
    "kill9-aof": kill9,
    "script-flush": script_flush,
    "garbage": garbage,
}

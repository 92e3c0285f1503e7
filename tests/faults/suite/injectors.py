"""Fault injectors: each runs beside the load until ``stop`` is set and returns how many faults
it injected. They act on the real server process (SIGSTOP, kill -9), on its connections
(``CLIENT KILL``, the reply-dropping proxy), on its script cache, or on the queue's own keys."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import redis.asyncio as aredis
from redis.exceptions import RedisError

from queuestore.testing import RedisServer

from ..proxy import Fault, FaultProxy

__all__ = ["INJECTORS", "FaultContext", "Injector", "any_script"]


@dataclass
class FaultContext:
    """What an injector may act on."""

    server: RedisServer | None
    proxy: FaultProxy | None
    stop: anyio.Event
    rng: random.Random
    #: the backend's keys (``StreamKeys`` of a redis-streams backend), for garbage
    keys: Any = None


Injector = Callable[[FaultContext], Awaitable[int]]


async def _pause(ctx: FaultContext, low: float, high: float) -> bool:
    """Sleep a random while; False once ``stop`` is set."""
    with anyio.move_on_after(ctx.rng.uniform(low, high)):
        await ctx.stop.wait()
    return not ctx.stop.is_set()


def _client(server: RedisServer) -> aredis.Redis:
    return aredis.Redis(host=server.host, port=server.port, socket_timeout=2.0, socket_connect_timeout=2.0)


def any_script(args: list[bytes]) -> bool:
    return bool(args) and args[0].upper() in (b"EVALSHA", b"EVAL")


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
    """kill -9 the server (AOF, ``appendfsync always``) and start it again on the same port and dir."""
    server = ctx.server
    assert server is not None
    assert server.appendonly
    assert server.appendfsync == "always"
    kills = 0
    while await _pause(ctx, 0.3, 0.8):
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
    """Write garbage into the queue's own redis-streams keys: stream entries with an undecodable
    body, with no fields of ours, with non-numeric counters, and a due delayed job whose parked
    body and counters are junk. None of it may come out as a job or stop the real ones."""
    assert ctx.server is not None
    k = ctx.keys
    written = 0
    async with _client(ctx.server) as raw:
        while await _pause(ctx, 0.05, 0.15):
            n = written
            kind = n % 4
            try:
                if kind == 0:
                    await raw.xadd(k.stream, {"j": f"garbage-b{n}", "b": b"\xff\x00junk", "r": "0", "a": "0"})
                elif kind == 1:
                    await raw.xadd(k.stream, {"zz": "not ours"})
                elif kind == 2:
                    await raw.xadd(k.stream, {"j": f"garbage-r{n}", "b": b"\x81", "r": "x", "a": "-"})
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

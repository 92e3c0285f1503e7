"""A consumer's wait outside Lua: ``BLPOP`` on a wake-up list or ``XREAD BLOCK`` on a stream,
for at most a given time, on the connection's blocking client.

Where the server's blocking timeouts are sound (Redis, Valkey, Dragonfly) the command carries
the bound as its own timeout. KeyDB's are not
(:attr:`~queuestore.backends._redis.probe.ServerInfo.blocking_timeouts_safe`): a client that
returns before its timeout -- woken by data, or gone because a cancelled call closed its
connection -- stays in KeyDB's table of blocked-client timeouts, and at that deadline the
server locks the freed client and, once that memory holds other data, never answers again.
There the command blocks with timeout 0 (a client without a timeout never enters that table)
and the wait is bounded here: at the bound the call is cancelled, which closes its connection
and so unblocks it on the server. A wait that runs to its bound then costs a reconnect.
"""

from __future__ import annotations

from typing import Any

import anyio

from queuestore.backends._redis.connection import RedisConnection
from queuestore.backends._redis.probe import ServerInfo

__all__ = ["wait_list", "wait_stream"]


def _server_timeouts(conn: RedisConnection) -> bool:
    """Whether the server may bound the wait itself (before the probe: yes)."""
    info: ServerInfo | None = conn.server_info
    return info is None or info.blocking_timeouts_safe


async def wait_list(conn: RedisConnection, key: str, seconds: float) -> Any:
    """``BLPOP key`` for at most ``seconds``.

    Returns:
        BLPOP's reply: ``[key, element]``, or None when nothing came in time.

    Raises:
        redis.exceptions.RedisError: the call failed (the caller translates it).
    """
    client = conn.blocking_client
    if _server_timeouts(conn):
        return await client.blpop([key], timeout=seconds)
    with anyio.move_on_after(seconds):
        return await client.blpop([key], timeout=0)
    return None


async def wait_stream(conn: RedisConnection, stream: str, after: Any, seconds: float) -> Any:
    """``XREAD BLOCK ... STREAMS stream after``: wait for an entry newer than ``after`` for at
    most ``seconds`` (at least 1 ms).

    Returns:
        XREAD's reply, or None when no entry came in time.

    Raises:
        redis.exceptions.RedisError: the call failed (the caller translates it).
    """
    client = conn.blocking_client
    if _server_timeouts(conn):
        block_ms = max(1, int(seconds * 1000))
        return await client.execute_command("XREAD", "BLOCK", block_ms, "STREAMS", stream, after)
    with anyio.move_on_after(max(seconds, 0.001)):
        return await client.execute_command("XREAD", "BLOCK", 0, "STREAMS", stream, after)
    return None

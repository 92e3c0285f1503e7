"""The lone-call lane: one script call on a standalone client, without redis-py's per-command
machinery, with the same outcome.

A lone ``enqueue()`` (or any single script call) through ``Redis.execute_command`` pays, besides
the round trip, for: a lock and four connection-count metric calls per checkout and per release,
an event dispatch on release, a closure and a retry frame per command, ``asyncio.wait_for`` on the
write (a new task, so one more turn of the event loop) and a second timeout context on the read,
and the operation-duration metric. Measured under callgrind (``docs/benchmarks.md``, "A cheaper
lone call") that is about 190,000 of the client's 316,000 instructions of a minimal script call.

:class:`Lane` sends an already packed command on a connection of the client's own
:class:`~.pool.BoundedConnectionPool` and keeps every guarantee of the ordinary path:

* the pool's limit and FIFO wait (its slot gate), a new connection made and connected when none
  is idle, an idle one that has unread data or was closed reconnected (as redis-py's checkout);
* the connection's health check (``health_check_interval``) before the command;
* the socket timeout over the write and the read (one deadline, not one each): on expiry the
  connection is dropped and redis-py's ``TimeoutError`` is raised, as by the ordinary path;
* a broken connection (``ConnectionError``, ``OSError``) is dropped and the command re-sent per
  the connection's ``Retry`` policy (the client's ``max_retries``, its backoff): the callers put
  a call id in every mutating script, so a re-sent call never acts twice;
* a cancellation mid-call drops the connection (its reply may still come);
* error replies are raised as redis-py's exception classes (its parser builds them), so the
  backend's error translation is unchanged.

It is used only where it can be: a standalone client whose pool is a ``BoundedConnectionPool``
and whose connections expose the stream objects this relies on (:func:`lane_for` says None
otherwise, and the ordinary path is taken). What it leaves out is redis-py's own OpenTelemetry
command and pool metrics for these calls (queuestore's metrics record them as before).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from queuestore.backends._redis.packing import pack_fast
from queuestore.backends._redis.pool import BoundedConnectionPool
from queuestore.backends._redis.torn import raise_if_torn

__all__ = ["Lane", "lane_for"]


class Lane:
    """Lone calls on one standalone client's pool (see the module docstring).

    Args:
        pool: the client's connection pool.
    """

    __slots__ = ("_available", "_in_use", "_pool")

    def __init__(self, pool: BoundedConnectionPool) -> None:
        self._pool = pool
        self._available: list[Any] = pool._available_connections
        self._in_use: set[Any] = pool._in_use_connections

    async def call(self, args: tuple[Any, ...]) -> Any:
        """Send one command and return its parsed reply (packed by :func:`~.packing.pack_fast`,
        or by the connection's own packing when that declines).

        Raises:
            redis.exceptions.ResponseError: the server answered an error (NOSCRIPT as
                ``NoScriptError``, and so on: redis-py's classes).
            redis.exceptions.TimeoutError: no reply within the socket timeout (not re-sent).
            redis.exceptions.ConnectionError: the connection broke, and the re-sends the
                connection's retry policy allows broke too; or no connection was free within
                the pool's timeout.
        """
        packed = pack_fast(args)
        conn = await self._checkout()
        try:
            chunks = [packed] if packed is not None else conn.pack_command(*args)
            retry = conn.retry
            return await retry.call_with_retry(lambda: self._once(conn, chunks), lambda _: conn.disconnect())
        finally:
            self._checkin(conn)

    async def transaction(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` as one ``MULTI`` ... ``EXEC`` and return EXEC's replies, one per
        command, an error reply in its place as redis-py's exception instance (not raised).

        Never re-sent: whether a transaction whose reply was lost ran is the caller's to find
        out (its scripts carry a call id).

        Raises:
            redis.exceptions.ResponseError: the server refused the transaction (EXECABORT: a
                command was refused as it was queued), or EXEC answered nil.
            redis.exceptions.TimeoutError: no reply within the socket timeout.
            redis.exceptions.ConnectionError: the connection broke, or no connection was free
                within the pool's timeout.
        """
        packed = [pack_fast(args) for args in commands]
        conn = await self._checkout()
        try:
            chunks = [b"*1\r\n$5\r\nMULTI\r\n"]
            for args, one in zip(commands, packed, strict=True):
                chunks.extend([one] if one is not None else conn.pack_command(*args))
            chunks.append(b"*1\r\n$4\r\nEXEC\r\n")
            replies = await self._exchange(conn, chunks, len(commands) + 2)
        finally:
            self._checkin(conn)
        out = replies[-1]
        if isinstance(out, ResponseError):
            raise out
        if not isinstance(out, list):
            raise ResponseError(f"EXEC answered {out!r}")
        return out

    async def _checkout(self) -> Any:
        pool = self._pool
        await pool._take_slot()
        try:
            if self._available:
                conn = self._available.pop()
            else:
                conn = pool.make_connection()  # type: ignore[no-untyped-call]
                pool._seen.add(conn)
            self._in_use.add(conn)
            try:
                if not conn.is_connected:
                    await conn.connect()
                elif await self._dirty(conn):  # unread data, closed, or told to move: a new socket
                    await conn.disconnect()
                    await conn.connect()
            except BaseException:
                self._checkin(conn, slot=False)
                raise
        except BaseException:
            pool._give_slot()
            raise
        return conn

    @staticmethod
    async def _dirty(conn: Any) -> bool:
        """True when an idle connection must be made again, as redis-py's checkout decides: it
        has unread data, the server closed it (the check raises, or says so), or it was told to
        move (``should_reconnect``). redis-py before 5.1 names the check ``can_read_destructive``."""
        check = getattr(conn, "can_read", None) or conn.can_read_destructive
        try:
            if await check():
                return True
        except (RedisConnectionError, RedisTimeoutError, OSError):
            return True
        moved = getattr(conn, "should_reconnect", None)
        return bool(moved()) if moved is not None else False

    def _checkin(self, conn: Any, *, slot: bool = True) -> None:
        self._in_use.discard(conn)
        self._available.append(conn)
        if slot:
            self._pool._give_slot()

    @staticmethod
    async def _once(conn: Any, chunks: list[bytes]) -> Any:
        """One send and read on ``conn`` (connected first when a retry dropped it)."""
        response = (await Lane._exchange(conn, chunks, 1))[0]
        if isinstance(response, ResponseError):
            raise response from None
        return response

    @staticmethod
    async def _exchange(conn: Any, chunks: list[bytes], replies: int) -> list[Any]:
        """Send ``chunks`` on ``conn`` and read ``replies`` replies, within one socket timeout
        (error replies returned as exception instances)."""
        if not conn.is_connected:
            await conn.connect()
        interval = conn.health_check_interval
        loop = asyncio.get_running_loop()
        if interval and loop.time() > conn.next_health_check:
            await conn.check_health()
        try:
            async with asyncio.timeout(conn.socket_timeout):
                writer = conn._writer
                if writer is None:  # closed since the check above (a health check that failed)
                    raise RedisConnectionError(f"the connection to {conn._host_error()} was closed")
                writer.writelines(chunks)
                await writer.drain()
                read = conn._parser.read_response
                out = [await read() for _ in range(replies)]
        except TimeoutError:
            await conn.disconnect(nowait=True)
            raise RedisTimeoutError(f"Timeout reading from {conn._host_error()}") from None
        except OSError as exc:
            await conn.disconnect(nowait=True)
            raise RedisConnectionError(f"Error while talking to {conn._host_error()}: {exc.args}") from exc
        except (AttributeError, TypeError) as exc:
            await conn.disconnect(nowait=True)
            raise_if_torn(exc, f"a call on {conn._host_error()} was under way")
            raise
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        if interval:
            conn.next_health_check = loop.time() + interval
        return out


_NEEDED_CONN = ("_writer", "_parser", "_host_error", "next_health_check", "health_check_interval", "retry")


def lane_for(client: Any) -> Lane | None:
    """The lane of ``client``, or None when its calls must take the ordinary path (a cluster
    client, another pool, or a redis-py whose connections lack what the lane uses)."""
    if type(client) is not aredis.Redis:
        return None
    pool = client.connection_pool
    if not isinstance(pool, BoundedConnectionPool):
        return None
    if not isinstance(getattr(pool, "_available_connections", None), list) or not isinstance(
        getattr(pool, "_in_use_connections", None), set
    ):
        return None
    probe = pool.connection_class(**pool.connection_kwargs)  # never connected
    if not all(hasattr(probe, a) for a in _NEEDED_CONN):
        return None
    if not (hasattr(probe, "can_read") or hasattr(probe, "can_read_destructive")):
        return None
    return Lane(pool)

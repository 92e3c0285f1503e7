"""A blocking connection pool with a fast path.

redis-py's ``BlockingConnectionPool`` pays for its waiting machinery on every
checkout; this subclass takes a free connection directly and queues callers
only when the pool is full, still bounded by ``pool_timeout``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import redis.asyncio as aredis
from redis.event import AsyncAfterConnectionReleasedEvent
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["FastBlockingConnectionPool"]


class FastBlockingConnectionPool(aredis.BlockingConnectionPool):
    """A bounded pool that waits up to ``timeout`` (``pool_timeout``) for a free connection,
    without redis-py's per-call cost when one is free.

    redis-py's ``BlockingConnectionPool`` takes an ``asyncio.Condition``, an
    ``asyncio.timeout`` and its observability hooks on *every* checkout and release
    (~40% more client CPU per awaited command than a plain pool). Here a checkout with a
    free (or still creatable) connection and nobody queued is a pop; only a caller that
    finds the pool exhausted waits, FIFO, on its own future with the ``timeout`` deadline,
    and a release hands the connection to the first waiter. The pool's bound and timeout
    behave as before: ``ConnectionError("No connection available.")`` after ``timeout``.
    During a server maintenance notification (redis-py's ``set_in_maintenance``) the
    base class's locked path is used.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._waiters: deque[asyncio.Future[None]] = deque()

    def _maintenance(self) -> bool:
        return bool(self._in_maintenance)

    def _free(self) -> bool:
        return bool(self._available_connections) or len(self._in_use_connections) < self.max_connections

    def _wake_next(self) -> None:
        if not self._free():
            return
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
                return

    async def _wait_free(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = None if self.timeout is None else loop.time() + self.timeout
        first = True
        while first or not self._free():
            first = False
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            try:
                async with asyncio.timeout_at(deadline):
                    await fut
            except BaseException as exc:
                self._waiters.remove(fut)
                if fut.done() and not fut.cancelled():
                    self._wake_next()  # woken, then timed out or cancelled: pass the hand-over on
                if isinstance(exc, TimeoutError):
                    raise RedisConnectionError("No connection available.") from None
                raise
            self._waiters.remove(fut)

    async def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        if self._maintenance():
            return await super().get_connection()  # type: ignore[no-untyped-call]
        if self._waiters or not self._free():
            await self._wait_free()
            if self._maintenance():  # pragma: no cover - a maintenance began while waiting
                return await super().get_connection()  # type: ignore[no-untyped-call]
        if self._available_connections:
            connection = self._available_connections.pop()
        else:
            connection = self.make_connection()  # type: ignore[no-untyped-call]
        if self._waiters:
            self._wake_next()  # more than one was freed: the next waiter may go too
        self._in_use_connections.add(connection)
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def release(self, connection: Any) -> None:
        if self._maintenance() or getattr(self._condition, "_waiters", None):  # the base class's waiters
            await super().release(connection)
        else:
            self._in_use_connections.remove(connection)
            if connection.should_reconnect():
                await connection.disconnect()
            self._available_connections.append(connection)
            event = AsyncAfterConnectionReleasedEvent(connection)  # type: ignore[no-untyped-call]
            await self._event_dispatcher.dispatch_async(event)  # type: ignore[union-attr]
        self._wake_next()

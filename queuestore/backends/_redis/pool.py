"""A bounded connection pool built on redis-py's public pool API.

redis-py's stock ``ConnectionPool`` has no wait (a full pool raises at once) and its
``BlockingConnectionPool`` takes a condition variable and a timeout context on every
checkout. :class:`BoundedConnectionPool` is the stock ``ConnectionPool`` behind a gate of
our own: at most ``max_connections`` checked out, callers beyond that wait FIFO for up to
``timeout`` (``pool_timeout``). It calls only the public ``get_connection`` / ``release``
of its base class, so it works unchanged on every redis-py release the project declares.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections import deque
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["BoundedConnectionPool"]

# redis-py before 5.3 requires get_connection's command_name (unused); later ones deprecate passing it
_NAME_REQUIRED = (
    inspect.signature(aredis.ConnectionPool.get_connection).parameters.get("command_name") is not None
    and inspect.signature(aredis.ConnectionPool.get_connection).parameters["command_name"].default
    is inspect.Parameter.empty
)


class BoundedConnectionPool(aredis.ConnectionPool):
    """At most ``max_connections`` connections checked out; a caller that finds them all
    taken waits, first come first served, up to ``timeout`` seconds, then gets redis-py's
    ``ConnectionError("No connection available.")``.

    A checkout with a free slot and nobody queued is one counter step plus the base
    class's ``get_connection``; a release hands its slot to the first live waiter.

    Attributes:
        timeout: the longest wait for a free connection (None waits forever).
        waits: checkouts so far that found every connection taken and had to queue.
    """

    def __init__(self, *, max_connections: int, timeout: float | None, **kwargs: Any) -> None:
        super().__init__(max_connections=max_connections, **kwargs)
        self.timeout = timeout
        self._limit = max_connections
        self._out = 0  # slots taken (checked out, or being connected)
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._seen: weakref.WeakSet[Any] = weakref.WeakSet()  # every connection handed out
        self.waits = 0

    @property
    def checked_out(self) -> int:
        """Connections handed out and not yet released."""
        return self._out

    @property
    def idle(self) -> int:
        """Connections made by this pool and now back in it."""
        return max(0, len(self._seen) - self._out)

    @property
    def waiting(self) -> int:
        """Callers queued for a free connection."""
        return sum(1 for fut in self._waiters if not fut.done())

    def _hand_over(self) -> bool:
        """Give the slot being freed to the first live waiter; False when nobody waits."""
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return True
        return False

    async def _take_slot(self) -> None:
        if self._out < self._limit and not self._waiters:
            self._out += 1
            return
        self.waits += 1
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            async with asyncio.timeout(self.timeout):
                await fut  # the releaser kept _out for us
        except BaseException as exc:
            if fut.done() and not fut.cancelled():
                self._give_slot()  # handed a slot, then timed out or cancelled: pass it on
            else:
                fut.cancel()
            if isinstance(exc, TimeoutError):
                raise RedisConnectionError("No connection available.") from None
            raise

    def _give_slot(self) -> None:
        if not self._hand_over():
            self._out -= 1

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        """A connected connection, waiting up to ``timeout`` for a free slot.

        Raises:
            redis.exceptions.ConnectionError: no slot freed within ``timeout``, or the
                connection could not be made.
        """
        if not args and _NAME_REQUIRED:
            args = (None,)
        await self._take_slot()
        try:
            connection = await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except BaseException:
            self._give_slot()
            raise
        self._seen.add(connection)
        return connection

    async def release(self, connection: Any) -> None:
        """Return a connection and free its slot."""
        try:
            await super().release(connection)
        finally:
            self._give_slot()

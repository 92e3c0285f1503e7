"""A backend's lifecycle: open, close, and the maintenance loop of ``async with``.

``create`` (from a factory or the registry) returns a backend connected; ``async
with`` additionally runs its maintenance loop (reclaim of expired leases, promotion
of due delayed jobs) in a task group that is opened and closed in the same task.
Correctness never depends on that loop: dequeue reclaims and promotes
opportunistically too.
"""

from __future__ import annotations

import abc
import contextlib
from types import TracebackType
from typing import Self

import anyio

from queuestore._models import BackendConfig
from queuestore.errors import BackendClosedError

__all__ = ["BackendLifecycle"]


class BackendLifecycle(abc.ABC):
    """Open, close and maintain a backend; its name and queue.

    Attributes:
        name: the backend's configured name (for errors and stats).
        queue: the queue this backend serves.
    """

    name: str
    queue: str

    def __init__(self, config: BackendConfig) -> None:
        self.name = config.name or config.type
        self.queue = config.queue_name()
        self._opened = False
        self._closed = False
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._maintenance: anyio.CancelScope | None = None

    async def open(self) -> None:
        """Connect, probe the server and load scripts. Idempotent.

        Raises:
            ConnectionFailedError: the server is unreachable.
            BackendClosedError: the backend was closed already.
        """
        if self._closed:
            raise BackendClosedError(self.name, "open", "backend is closed")
        if not self._opened:
            await self._open()
            self._opened = True

    async def _open(self) -> None:  # noqa: B027 - optional hook
        """Subclass hook for :meth:`open`."""

    async def _close(self) -> None:  # noqa: B027 - optional hook
        """Subclass hook for :meth:`aclose`: release connections."""

    async def run_maintenance(self) -> None:
        """Run the maintenance loop (reclaim, promotion) until cancelled.

        The default does nothing; backends with leases override it.
        """
        await anyio.sleep_forever()

    async def __aenter__(self) -> Self:
        await self.open()
        stack = contextlib.AsyncExitStack()
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)
        tg.start_soon(self.run_maintenance)
        self._exit_stack, self._maintenance = stack, tg.cancel_scope
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._exit_stack = self._exit_stack, None
        try:
            if stack is not None:
                await stack.aclose()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close connections. Idempotent; the backend cannot be reopened."""
        if self._closed:
            return
        self._closed = True
        if self._maintenance is not None:
            # closed from inside its own `async with`: stop maintenance now;
            # __aexit__ still exits the task group in the task that entered it.
            self._maintenance.cancel()
        with anyio.CancelScope(shield=True):
            await self._close()

    async def close(self) -> None:
        """Alias of :meth:`aclose`."""
        await self.aclose()

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._closed

    def _check_open(self, operation: str) -> None:
        if self._closed or not self._opened:
            raise BackendClosedError(
                self.name, operation, "backend is closed" if self._closed else "backend is not open"
            )

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._opened else "new")
        return f"<{type(self).__name__} name={self.name!r} queue={self.queue!r} {state}>"

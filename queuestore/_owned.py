"""``OwnedBackends``: the backends a manager owns, their maintenance loops and their closing.

Each owned backend's ``run_maintenance()`` loop runs in the task group the manager
hands over (while it is entered); a loop that fails is logged and restarted with
backoff. Closing a backend cancels its loop first; close errors are logged, not raised.
"""

from __future__ import annotations

import logging

import anyio
import anyio.abc

from queuestore._redact import redact
from queuestore.abc import QueueBackend

__all__ = ["MAINTENANCE_BACKOFF", "OwnedBackends"]

log = logging.getLogger("queuestore.manager")

#: first and longest wait before restarting a failed maintenance loop (seconds)
MAINTENANCE_BACKOFF = (1.0, 30.0)


class _Owned:
    __slots__ = ("backend", "scope")

    def __init__(self, backend: QueueBackend) -> None:
        self.backend = backend
        self.scope = anyio.CancelScope()


class OwnedBackends:
    """The backends one manager owns, by identity."""

    def __init__(self) -> None:
        self._entries: dict[int, _Owned] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def start_maintenance(self, tg: anyio.abc.TaskGroup) -> None:
        """Run every owned backend's maintenance loop in ``tg`` (and those adopted later)."""
        self._tg = tg
        for entry in self._entries.values():
            tg.start_soon(self._maintain, entry)

    def stop_maintenance(self) -> None:
        """Cancel every maintenance loop; backends adopted from now on get none."""
        self._tg = None
        for entry in self._entries.values():
            entry.scope.cancel()

    def adopt(self, backend: QueueBackend) -> None:
        """Own ``backend`` (once; its maintenance starts when a task group is running)."""
        if id(backend) in self._entries:
            return
        entry = self._entries[id(backend)] = _Owned(backend)
        if self._tg is not None:
            self._tg.start_soon(self._maintain, entry)

    async def close(self, backend: QueueBackend) -> None:
        """Stop owning ``backend`` and close it (nothing when it is not owned)."""
        entry = self._entries.pop(id(backend), None)
        if entry is not None:
            await _close(entry)

    async def close_all(self) -> None:
        """Close every owned backend."""
        entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            await _close(entry)

    async def _maintain(self, entry: _Owned) -> None:
        delay, longest = MAINTENANCE_BACKOFF
        with entry.scope:
            while not entry.backend.closed:
                try:
                    await entry.backend.run_maintenance()
                    return
                except Exception as exc:
                    log.warning(
                        "maintenance of backend %s failed (restart in %gs): %s",
                        entry.backend.name,
                        delay,
                        redact(f"{type(exc).__name__}: {exc}"),
                    )
                await anyio.sleep(delay)
                delay = min(delay * 2, longest)


async def _close(entry: _Owned) -> None:
    entry.scope.cancel()
    with anyio.CancelScope(shield=True):
        try:
            await entry.backend.aclose()
        except Exception as exc:
            log.warning("closing backend %s failed: %s", entry.backend.name, redact(exc))

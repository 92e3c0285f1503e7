"""What a backend tells about itself and its queue without changing it.

Depth, a look at the next ready jobs, a paged walk over stored jobs, the
capabilities probed at open, statistics and health.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator

from queuestore._job import Job
from queuestore._models import BackendCapabilities, BackendStats, HealthStatus, IterOptions

__all__ = ["QueueInspection"]


class QueueInspection(abc.ABC):
    """Read-only views of a backend; subclasses implement the abstract methods."""

    @abc.abstractmethod
    async def length(self) -> int:
        """Jobs waiting: ready + delayed (not in flight, not dead)."""

    @abc.abstractmethod
    async def peek(self, offset: int = 0) -> Job | None:
        """The ready job at ``offset`` in dequeue order (0 = next), without leasing it.

        Raises:
            InvalidJobError: offset < 0.
        """

    @abc.abstractmethod
    def iter(self, options: IterOptions | None = None) -> AsyncIterator[Job]:
        """Walk stored jobs page by page (never loading the whole queue)."""

    @abc.abstractmethod
    def capabilities(self) -> BackendCapabilities:
        """What this backend, on its connected server, supports (probed at open)."""

    @abc.abstractmethod
    async def stats(self) -> BackendStats:
        """Depth per state, rates, error ratio, latencies, pool usage.

        Raises:
            BackendError: the store failed.
        """

    @abc.abstractmethod
    async def health(self) -> HealthStatus:
        """Check reachability, latency and data-safety settings. Never raises."""

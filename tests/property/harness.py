"""How a property test gets backends and moves time, per backend kind.

A harness makes backends on one fresh store and advances time by whole units.
The memory harness drives the namespace clock (no sleeping). A Redis harness
would make backends on a per-example ``key_prefix`` and ``advance`` by sleeping
``units * unit_seconds``; every duration in the tests is a whole number of units
plus a half, so no deadline ever falls on an instant the test observes.
"""

from __future__ import annotations

from typing import Any, Protocol

from queuestore import BackendConfig, QueueBackend
from queuestore.backends.memory import MemoryBackendFactory, drop_namespace, get_namespace, unique_namespace


class Harness(Protocol):
    """Backends on one store, and its clock."""

    unit: float  # seconds per time unit

    def now(self) -> float:
        """The store's current time (epoch seconds)."""
        ...

    async def make(self, queue: str, **options: Any) -> QueueBackend:
        """An open backend on ``queue`` of this store."""
        ...

    async def advance(self, units: float) -> None:
        """Let ``units`` of time pass."""
        ...

    async def aclose(self) -> None:
        """Close every backend and forget the store."""
        ...


class MemoryHarness:
    """The memory backend on a fresh namespace with a hand-driven clock."""

    unit = 1.0

    def __init__(self) -> None:
        self.namespace = unique_namespace("property")
        self._now = 1_000_000.0
        get_namespace(self.namespace).clock = self.now
        self._backends: list[QueueBackend] = []

    def now(self) -> float:
        return self._now

    async def make(self, queue: str, **options: Any) -> QueueBackend:
        config = BackendConfig(type="memory", queue=queue, options={"namespace": self.namespace, **options})
        backend = await MemoryBackendFactory().create(config)
        self._backends.append(backend)
        return backend

    async def advance(self, units: float) -> None:
        self._now += units * self.unit

    async def aclose(self) -> None:
        for backend in self._backends:
            await backend.aclose()
        drop_namespace(self.namespace)


HARNESSES: dict[str, type[MemoryHarness]] = {"memory": MemoryHarness}

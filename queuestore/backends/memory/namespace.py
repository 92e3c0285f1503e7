"""Namespaces: the in-process "servers" of the memory backend, process-wide and keyed by name.

A :class:`Namespace` is what a Redis server is to the Redis backends: it holds
queues by name, so two backends on one namespace see the same queues and
``move`` works between them. Namespaces live for the whole process (until
:func:`drop_namespace`).
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from queuestore.backends.memory.store import QueueData

__all__ = ["Namespace", "drop_namespace", "get_namespace", "unique_namespace"]


@dataclass
class Namespace:
    """A process-wide in-memory store of queues (the memory backend's "server").

    ``clock`` is the store's time source (epoch seconds), like a server's TIME;
    tests may replace it to move time without sleeping.
    """

    name: str
    clock: Callable[[], float] = time.time
    queues: dict[str, QueueData] = field(default_factory=dict)
    seq: itertools.count[int] = field(default_factory=itertools.count)
    #: migration records by queue: the record and when it expires (None = never)
    records: dict[str, tuple[dict[str, str], float | None]] = field(default_factory=dict)

    def queue(self, name: str) -> QueueData:
        """The queue of that name (created empty on first use)."""
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = QueueData(name, self.seq)
        return q


_NAMESPACES: dict[str, Namespace] = {}


def get_namespace(name: str) -> Namespace:
    """The namespace of that name, created on first use."""
    ns = _NAMESPACES.get(name)
    if ns is None:
        ns = _NAMESPACES[name] = Namespace(name)
    return ns


def drop_namespace(name: str) -> None:
    """Forget a namespace and every job in it (backends still using it keep their reference)."""
    _NAMESPACES.pop(name, None)


def unique_namespace(prefix: str = "ns") -> str:
    """A namespace name no one has used yet (for tests and throwaway queues)."""
    return f"{prefix}-{uuid.uuid4().hex[:16]}"

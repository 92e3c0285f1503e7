"""A memory backend's client of its namespace: what a connection is to a Redis backend.

Every operation of the backend goes through it: :meth:`QueueClient.enter` refuses
a closed backend and yields to the event loop once (as a round trip to a server
would), :meth:`QueueClient.sweep` brings the queue up to date with the clock
(reclaim, promotion, expiry) and counts what it did, and a consumer with nothing
to take parks in :meth:`QueueClient.wait` until a producer or the clock wakes it.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.lowlevel

from queuestore._logging import get_logger, log_sweep
from queuestore._metrics import OperationMetrics
from queuestore.backends.memory.namespace import Namespace
from queuestore.backends.memory.store import QueueData

__all__ = ["QueueClient"]

_log = get_logger("backends.memory")


class QueueClient:
    """One backend's access to its queue ``q`` in namespace ``ns``.

    Attributes:
        ns: the namespace (its clock is the time of every operation).
        q: the backend's queue.
        metrics: the backend's operation counters (sweeps count dead and expired jobs).
        check_open: raises ``BackendClosedError`` for an operation of a closed backend.
    """

    def __init__(
        self, ns: Namespace, queue: str, metrics: OperationMetrics, check_open: Callable[[str], None]
    ) -> None:
        self.ns = ns
        self.q = ns.queue(queue)
        self.metrics = metrics
        self.check_open = check_open
        self._waiters: set[anyio.Event] = set()

    def now(self) -> float:
        """The namespace's time (epoch seconds)."""
        return self.ns.clock()

    def sweep(self, *, reclaim: bool = True) -> None:
        """Reclaim expired leases (unless ``reclaim`` is False: a lease holder's own ack,
        nack, extend_lease or move leaves them to dequeue and the maintenance loop), promote
        due jobs and drop expired ones, counting them."""
        res = self.q.sweep(self.now(), reclaim=reclaim)
        self.metrics.record("dead", res.dead)
        self.metrics.record("expired", res.expired)
        log_sweep(_log, self.q.name, "memory", dead_lettered=res.dead, expired=res.expired)

    def queue(self, name: str) -> QueueData:
        """Another queue of the same namespace, swept up to now."""
        q = self.ns.queue(name)
        q.sweep(self.now())
        return q

    async def enter(self, operation: str) -> None:
        """Start a public operation: refuse a closed backend, then yield to the event loop.

        Every operation passes this checkpoint before its atomic step, as a call to a
        real server would, so concurrent callers interleave fairly (without it, one
        consumer of a full queue would take every job before the others ever ran).
        A cancellation here leaves nothing done.

        Raises:
            BackendClosedError: the backend is (or got, while yielding) closed.
        """
        self.check_open(operation)
        await anyio.lowlevel.checkpoint()
        self.check_open(operation)

    async def wait(self, remaining: float, poll: float) -> None:
        """Sleep until a job may be ready: woken by a producer, or when something falls due.

        Sleeps at most ``remaining`` and at most ``poll`` seconds.
        """
        wait = min(remaining, poll)
        due = self.q.next_due()
        if due is not None:
            wait = min(wait, max(0.001, due - self.now()))
        event = anyio.Event()
        self.q.waiters.add(event)
        self._waiters.add(event)
        try:
            with anyio.move_on_after(wait):
                await event.wait()
        finally:
            self.q.waiters.discard(event)
            self._waiters.discard(event)

    def wake_all(self) -> None:
        """Wake this backend's waiting consumers (the backend is closing)."""
        for event in self._waiters:
            event.set()

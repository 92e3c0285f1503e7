"""The read side of the memory backend: length, peek, paged iter, stats, health, capabilities.

``iter`` never copies a whole state: each page is a bisection from a cursor (the
last position seen) plus a copy of at most ``count`` jobs, taken in one atomic
step; between pages other tasks may change the queue.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio.lowlevel

from queuestore._job import Job, JobState
from queuestore._models import BackendCapabilities, BackendStats, HealthLevel, HealthStatus, IterOptions
from queuestore.backends.memory.client import QueueClient
from queuestore.backends.memory.index import Position
from queuestore.backends.memory.layout import Record, copy_job
from queuestore.backends.memory.store import QueueData
from queuestore.errors import InvalidJobError

__all__ = ["CAPABILITIES", "Cursor", "MemoryReader", "cursor_at", "page"]

#: in-process: atomic, idempotent, TTL, priorities, batches; not persistent or clustered
CAPABILITIES = BackendCapabilities(
    atomic_ack=True,
    idempotent_enqueue=True,
    transactions=True,
    time_to_live=True,
    prioritization=True,
    batch_operations=True,
)


@dataclass(slots=True)
class Cursor:
    """Where a paged walk is: the state (index into the walked states) and the last position seen."""

    state: int = 0
    after: Position | None = None


def page(
    q: QueueData, states: tuple[JobState, ...], cursor: Cursor, count: int, reverse: bool
) -> list[Record]:
    """Up to ``count`` records after ``cursor`` (which advances); [] when the walk is over."""
    order = states[::-1] if reverse else states
    while cursor.state < len(order):
        entries = q.index[order[cursor.state]].page(cursor.after, count, reverse)
        if entries:
            cursor.after = (entries[-1][0], entries[-1][1])
            return [q.jobs[e[2]] for e in entries]
        cursor.state, cursor.after = cursor.state + 1, None
    return []


def cursor_at(q: QueueData, states: tuple[JobState, ...], job_id: str, reverse: bool) -> Cursor | None:
    """A cursor whose next page starts at ``job_id`` (inclusive); None if it is not in ``states``."""
    rec = q.jobs.get(job_id)
    order = states[::-1] if reverse else states
    if rec is None or rec.where not in order:
        return None
    # positions are (rank, int seq): one seq step before (or after) is strictly between neighbours
    return Cursor(order.index(JobState(rec.where)), (rec.rank, rec.seq + (1 if reverse else -1)))


class MemoryReader:
    """The read operations of a memory backend over its :class:`QueueClient`."""

    def __init__(self, client: QueueClient, backend: str) -> None:
        self._client = client
        self._q = client.q
        self._backend = backend

    async def length(self) -> int:
        """Jobs waiting: ready + delayed.

        Raises:
            BackendClosedError: the backend is closed.
        """
        await self._client.enter("length")
        self._client.sweep()
        return self._q.count(JobState.READY) + self._q.count(JobState.DELAYED)

    async def peek(self, offset: int) -> Job | None:
        """A copy of the ready job at ``offset`` in dequeue order (0 = next), not leased.

        Raises:
            InvalidJobError: offset is not an int >= 0.
            BackendClosedError: the backend is closed.
        """
        await self._client.enter("peek")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidJobError("offset", f"must be an int >= 0, got {offset!r}")
        self._client.sweep()
        return self._q.peek(offset)

    def iter(self, options: IterOptions | None) -> AsyncIterator[Job]:
        """Walk stored jobs one page of ``options.count`` at a time (copies).

        Order within a state: ready in dequeue order, delayed by due time, in
        flight by lease deadline, dead in the order they died; states in the
        order given (``reverse`` walks the whole sequence backwards).
        ``start_id`` starts the walk at that job (nothing if it is not in the
        walked states); ``end_id`` ends it after that job; ``start_time`` /
        ``end_time`` keep jobs with ``start_time <= created_at < end_time``.
        A job that changes state mid-walk may be seen twice or not at all;
        no job is seen twice within one state.

        Raises:
            InvalidJobError: a bad page count (raised here, before iterating).
            BackendClosedError: the backend is closed (raised while iterating).
        """
        opts = options or IterOptions()
        opts.checked_count()
        return self._walk(opts)

    async def _walk(self, opts: IterOptions) -> AsyncIterator[Job]:
        count, states = opts.checked_count(), tuple(JobState(s) for s in opts.states)
        self._client.check_open("iter")
        self._client.sweep()
        cursor: Cursor | None = Cursor()
        if opts.start_id is not None:
            cursor = cursor_at(self._q, states, opts.start_id, opts.reverse)
        while cursor is not None:
            await self._client.enter("iter")
            self._client.sweep()
            batch: list[Job] = []
            recs = page(self._q, states, cursor, count, opts.reverse)
            if not recs:
                return
            for rec in recs:
                created = rec.job.created_at
                if (opts.start_time is None or created >= opts.start_time) and (
                    opts.end_time is None or created < opts.end_time
                ):
                    batch.append(copy_job(rec.job))
                if rec.job.id == opts.end_id:
                    cursor = None
                    break
            for job in batch:
                yield job

    async def stats(self) -> BackendStats:
        """Depths per state (``queue_depth`` = ready only), queue totals and this instance's rates.

        Totals count what happened to the queue (whichever backend did it); rates,
        latencies and errors are this instance's, per second over ``metrics_window``.

        Raises:
            BackendClosedError: the backend is closed.
        """
        await self._client.enter("stats")
        self._client.sweep()
        q, m, now = self._q, self._client.metrics, self._client.now()
        starts = [q.jobs[e[2]].job.started_at or now for e in q.index[JobState.IN_FLIGHT]]
        return BackendStats(
            backend=self._backend,
            queue=q.name,
            queue_depth=q.count(JobState.READY),
            delayed=q.count(JobState.DELAYED),
            in_flight=q.count(JobState.IN_FLIGHT),
            dead=q.count(JobState.DEAD),
            total_enqueued=q.totals["enqueued"],
            total_dequeued=q.totals["dequeued"],
            total_acked=q.totals["acked"],
            total_nacked=q.totals["nacked"],
            total_dead_lettered=q.totals["dead_lettered"],
            total_expired=q.totals["expired"],
            total_dead_dropped=q.totals["dead_dropped"],
            total_errors=m.totals["error"],
            oldest_pending_age_s=max(0.0, now - min(starts)) if starts else None,
            **m.activity(),
        )

    async def health(self, closed: bool) -> HealthStatus:
        """Healthy while open (an in-process store is always reachable). Never raises."""
        await anyio.lowlevel.checkpoint()
        start = time.perf_counter()
        details = {
            "namespace": self._client.ns.name,
            "jobs": str(len(self._q.jobs)),
            "persistence": "none (in-process memory)",
        }
        latency = (time.perf_counter() - start) * 1000.0
        if closed:
            return HealthStatus(status=HealthLevel.UNHEALTHY, message="backend is closed", details=details)
        return HealthStatus(status=HealthLevel.HEALTHY, latency_ms=latency, server="memory", details=details)

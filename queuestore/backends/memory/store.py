"""The data of one queue of the memory store: its jobs, one index per state, its totals.

Every method of :class:`QueueData` runs to completion without awaiting, so on
one event loop each is one atomic step -- the memory twin of one Lua script.
The store is not thread-safe: use a namespace from one event loop at a time.
"""

from __future__ import annotations

import heapq
import itertools
import uuid
from collections import deque
from dataclasses import dataclass

import anyio

from queuestore._backoff import RetryBackoff
from queuestore._job import Job, JobState
from queuestore.backends.memory.index import Index
from queuestore.backends.memory.layout import HELD, LEASE_EXPIRED, WALK_ORDER, Record, clear_lease, copy_job
from queuestore.errors import DuplicateJobError, JobNotFoundError, LeaseLostError

__all__ = ["QueueData", "SweepResult"]

_TOTALS = ("enqueued", "dequeued", "acked", "nacked", "dead_lettered", "expired", "dead_dropped")


@dataclass(slots=True)
class SweepResult:
    """What one sweep did."""

    readied: int = 0
    dead: int = 0
    expired: int = 0


class QueueData:
    """One queue: its jobs, one index per state, idempotency keys and waiting consumers.

    ``seq`` is the namespace-wide counter that orders index entries in arrival order.
    """

    def __init__(self, name: str, seq: itertools.count[int]) -> None:
        self.name = name
        self._seq = seq
        self.jobs: dict[str, Record] = {}
        self.index: dict[str, Index] = {s: Index() for s in WALK_ORDER}
        self.ttl = Index()  # waiting jobs with expires_at, by expires_at
        self.idem: dict[str, float] = {}  # idempotency key -> epoch until which it dedups
        self._idem_order: deque[tuple[float, str]] = deque()
        self.held: dict[str, dict[str, Record]] = {}  # migration id -> held records, in hold order
        self.waiters: set[anyio.Event] = set()
        self.totals: dict[str, int] = dict.fromkeys(_TOTALS, 0)
        # lease tokens of deleted leased jobs -> their deadline: the holder gets LeaseLostError
        self.gone: dict[str, float] = {}
        self._gone_order: list[tuple[float, str]] = []

    # -- placement ----------------------------------------------------------------------
    def place(self, rec: Record, state: JobState, rank: float, *, keep_seq: bool = False) -> None:
        if not keep_seq:
            rec.seq = next(self._seq)
        rec.where, rec.rank, rec.job.state = state, rank, state
        self.index[state].add(rank, rec.seq, rec.job.id)
        if state in (JobState.READY, JobState.DELAYED) and rec.job.expires_at is not None:
            self.ttl.add(rec.job.expires_at, rec.seq, rec.job.id)

    def unplace(self, rec: Record) -> None:
        if rec.where == HELD:
            return
        self.index[rec.where].remove(rec.rank, rec.seq, rec.job.id)
        if rec.where in (JobState.READY, JobState.DELAYED) and rec.job.expires_at is not None:
            self.ttl.remove(rec.job.expires_at, rec.seq, rec.job.id)

    def wait_or_ready(self, rec: Record, now: float, *, keep_seq: bool = False) -> None:
        due = rec.job.available_at
        if due is not None and due > now:
            self.place(rec, JobState.DELAYED, due, keep_seq=keep_seq)
        else:
            self.place(rec, JobState.READY, -float(rec.job.priority), keep_seq=keep_seq)

    def _kill(self, rec: Record, reason: str, now: float) -> None:
        clear_lease(rec.job)
        rec.job.dead_reason, rec.job.dead_at = reason, now
        rec.job.origin_queue = rec.job.origin_queue or self.name
        self.place(rec, JobState.DEAD, 0.0)
        self.totals["dead_lettered"] += 1

    def _retry(self, rec: Record, now: float, delay: float, error: str | None) -> bool:
        """Send a job back with retry_count + 1, or dead-letter it past max_retries. True if back."""
        if error is not None:
            rec.job.last_error = error
        if rec.job.retry_count + 1 > rec.job.max_retries:
            self._kill(rec, error or "max retries exceeded", now)
            return False
        rec.job.retry_count += 1
        clear_lease(rec.job)
        rec.job.available_at = now + delay if delay > 0 else None
        self.wait_or_ready(rec, now)
        return True

    def notify(self) -> None:
        """Wake every consumer waiting on this queue."""
        waiters, self.waiters = self.waiters, set()
        for event in waiters:
            event.set()

    # -- time -----------------------------------------------------------------------------
    def sweep(self, now: float, *, reclaim: bool = True) -> SweepResult:
        """Reclaim expired leases (unless ``reclaim`` is False), promote due delayed jobs,
        drop expired waiting jobs.

        A reclaimed job goes to the tail of its priority with retry_count + 1 (or is
        dead-lettered, reason "lease expired", when that would exceed max_retries).
        """
        res = SweepResult()
        for _, _, job_id in self.index[JobState.IN_FLIGHT].due(now) if reclaim else ():
            rec = self.jobs[job_id]
            rec.where = HELD  # out of every index; _retry/_kill place it again
            if self._retry(rec, now, 0.0, LEASE_EXPIRED):
                res.readied += 1
            else:
                res.dead += 1
        for _, _, job_id in self.index[JobState.DELAYED].due(now):
            rec = self.jobs[job_id]
            if rec.job.expires_at is not None:
                self.ttl.remove(rec.job.expires_at, rec.seq, job_id)
            rec.where = HELD
            rec.job.available_at = None
            self.wait_or_ready(rec, now)
            res.readied += 1
        for _, _, job_id in self.ttl.due(now):
            rec = self.jobs.pop(job_id)
            self.index[rec.where].remove(rec.rank, rec.seq, job_id)
            res.expired += 1
        self.totals["expired"] += res.expired
        while self._gone_order and self._gone_order[0][0] <= now:
            self.gone.pop(heapq.heappop(self._gone_order)[1], None)
        while self._idem_order and self._idem_order[0][0] <= now:
            until, key = self._idem_order.popleft()
            if self.idem.get(key) == until:
                del self.idem[key]
        if res.readied:
            self.notify()
        return res

    def next_due(self) -> float | None:
        """The earliest epoch at which a sweep would change something (None: nothing scheduled)."""
        times = [
            e[0]
            for e in (
                self.index[JobState.DELAYED].first(),
                self.index[JobState.IN_FLIGHT].first(),
                self.ttl.first(),
            )
            if e is not None
        ]
        return min(times) if times else None

    # -- transitions ----------------------------------------------------------------------
    def enqueue(self, job: Job, now: float, window: float) -> bool:
        """Store a private copy of ``job``; False if its id or (live) idempotency key is known."""
        if job.id in self.jobs:
            return False
        key = job.idempotency_key
        if key is not None:
            if self.idem.get(key, 0.0) > now:
                return False
            self.idem[key] = now + window
            self._idem_order.append((now + window, key))
        self.totals["enqueued"] += 1
        return self.add(job, now)

    def add(self, job: Job, now: float, *, dead: bool = False) -> bool:
        """Store a private copy of ``job``, stamped with this queue and without a lease.

        It is placed dead, or waiting (delayed until ``available_at``, else ready). False
        (nothing stored) if its id is known.
        """
        if job.id in self.jobs:
            return False
        job.queue = self.name
        clear_lease(job)
        rec = Record(job, HELD)
        self.jobs[job.id] = rec
        if dead:
            self.place(rec, JobState.DEAD, 0.0)
        else:
            self.wait_or_ready(rec, now)
            if rec.where == JobState.READY:
                self.notify()
        return True

    def lease(self, now: float, visibility: float, count: int) -> list[Job]:
        """Lease up to ``count`` ready jobs in dequeue order; return copies."""
        out: list[Job] = []
        ready = self.index[JobState.READY]
        while len(out) < count and (entry := ready.first()) is not None:
            rec = self.jobs[entry[2]]
            self.unplace(rec)
            job = rec.job
            job.attempt += 1
            job.started_at = now
            job.lease_token = uuid.uuid4().hex
            job.lease_deadline = now + visibility
            self.place(rec, JobState.IN_FLIGHT, job.lease_deadline)
            out.append(copy_job(job))
        self.totals["dequeued"] += len(out)
        return out

    def leased(self, job_id: str, token: str | None) -> Record:
        """The in-flight record of ``job_id``, checking the lease token when given.

        Raises:
            JobNotFoundError: no such job, or (unguarded) it is not in flight.
            LeaseLostError: a token was given and it is not the current lease.
        """
        rec = self.jobs.get(job_id)
        if rec is None and token is not None and token in self.gone:
            raise LeaseLostError(job_id, f"job {job_id!r} was deleted while leased")
        if rec is None:
            raise JobNotFoundError.not_in_flight(job_id)
        if token is not None and (rec.where != JobState.IN_FLIGHT or rec.job.lease_token != token):
            raise LeaseLostError(job_id)
        if rec.where != JobState.IN_FLIGHT:
            raise JobNotFoundError.not_in_flight(job_id, str(rec.where))
        return rec

    def ack(self, job_id: str, token: str | None) -> None:
        """Acknowledge: the job is gone. Raises as :meth:`leased`."""
        rec = self.leased(job_id, token)
        self.unplace(rec)
        del self.jobs[job_id]
        self.totals["acked"] += 1

    def nack(
        self,
        job_id: str,
        token: str | None,
        requeue: bool,
        delay: float | None,
        error: str | None,
        now: float,
        backoff: RetryBackoff | None = None,
    ) -> None:
        """Give a lease back: retry (maybe delayed) or dead-letter. Raises as :meth:`leased`.

        A ``delay`` of None is the ``backoff`` policy's delay for the job's retry count
        (0 without a policy).
        """
        rec = self.leased(job_id, token)
        if delay is None:
            delay = 0.0 if backoff is None else backoff.delay(rec.job.retry_count)
        self.unplace(rec)
        rec.where = HELD
        self.totals["nacked"] += 1
        if not requeue:
            if error is not None:
                rec.job.last_error = error
            self._kill(rec, error or "rejected", now)
        elif self._retry(rec, now, delay, error) and rec.where == JobState.READY:
            self.notify()

    def forget(self, rec: Record) -> None:
        """Remove a stored job (out of its index, gone); a leased job's token is remembered
        until its deadline, so that its holder is told its lease is lost."""
        self.unplace(rec)
        del self.jobs[rec.job.id]
        token, deadline = rec.job.lease_token, rec.job.lease_deadline
        if rec.where == JobState.IN_FLIGHT and token is not None and deadline is not None:
            self.gone[token] = deadline
            heapq.heappush(self._gone_order, (deadline, token))

    def extend(self, job_id: str, token: str | None, seconds: float, now: float) -> float:
        """Move a lease's deadline to ``now + seconds``; return it. Raises as :meth:`leased`."""
        rec = self.leased(job_id, token)
        self.unplace(rec)
        rec.job.lease_deadline = now + seconds
        self.place(rec, JobState.IN_FLIGHT, rec.job.lease_deadline, keep_seq=True)
        return rec.job.lease_deadline

    def move(self, job_id: str, token: str | None, target: QueueData, now: float) -> None:
        """Move a job (leased and guarded, or waiting, or dead) into ``target`` as ready.

        A job gone from here that ``target`` holds as moved from here was moved before (a
        retried call): nothing to do. A job of that id in ``target`` that came from
        elsewhere is not this queue's job: not found.

        Raises:
            JobNotFoundError: not here (and not moved from here), or as :meth:`leased`.
            LeaseLostError: as :meth:`leased`.
            DuplicateJobError: ``target`` holds another job with this id.
        """
        there = target.jobs.get(job_id)
        if job_id not in self.jobs and there is not None and there.job.origin_queue == self.name:
            return
        rec = self.jobs.get(job_id)
        if rec is None and token is not None and token in self.gone:
            raise LeaseLostError(job_id, f"job {job_id!r} was deleted while leased")
        if rec is None or rec.where == HELD:
            gone = f"job {job_id!r} is not in queue {self.name!r} \u2014 already acked?"
            raise JobNotFoundError(job_id, gone)
        if token is not None or rec.where == JobState.IN_FLIGHT:
            rec = self.leased(job_id, token)
        if job_id in target.jobs:
            raise DuplicateJobError(job_id, f"queue {target.name!r} already holds job {job_id!r}")
        self.unplace(rec)
        del self.jobs[job_id]
        job = rec.job
        clear_lease(job)
        job.origin_queue, job.queue, job.available_at = self.name, target.name, None
        job.dead_reason = job.dead_at = None
        moved = Record(job, HELD)
        target.jobs[job_id] = moved
        target.place(moved, JobState.READY, -float(job.priority))
        target.notify()

    # -- reading ------------------------------------------------------------------------
    def peek(self, offset: int) -> Job | None:
        """A copy of the ready job at ``offset`` in dequeue order."""
        entry = self.index[JobState.READY].at(offset)
        return None if entry is None else copy_job(self.jobs[entry[2]].job)

    def count(self, state: JobState) -> int:
        """How many jobs are in ``state``."""
        return len(self.index[state])

"""The public memory backend: the service-facing operations over a queue of a namespace.

The semantics are described in :mod:`queuestore.backends.memory`. Each operation
passes :meth:`QueueClient.enter`, sweeps, then takes one atomic step on the
:class:`~queuestore.backends.memory.store.QueueData`. The backend holds its
collaborators -- the client of its namespace, its codec and metrics -- and hands
the read operations to a :class:`MemoryReader` and the migration SPI to a
:class:`MemoryMigration`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta

import anyio

from queuestore._args import JobRef, dequeue_options, job_ref, seconds_arg
from queuestore._backoff import backoff_policy
from queuestore._codec import JobCodec
from queuestore._job import AllJobs, Job, JobState
from queuestore._metrics import OperationMetrics
from queuestore._models import (
    BackendCapabilities,
    BackendConfig,
    BackendStats,
    DequeueOptions,
    HealthStatus,
    IterOptions,
)
from queuestore._record import RecordOp, RecordReply
from queuestore.abc import MigrationSupport, QueueBackend
from queuestore.backends.memory.admin import MemoryAdmin
from queuestore.backends.memory.client import QueueClient
from queuestore.backends.memory.layout import stored_copy
from queuestore.backends.memory.migration import MemoryMigration
from queuestore.backends.memory.namespace import get_namespace
from queuestore.backends.memory.options import MemoryOptions, memory_options
from queuestore.backends.memory.read import CAPABILITIES, MemoryReader
from queuestore.errors import InvalidJobError, JobNotFoundError, LeaseLostError, QueueMovedError

__all__ = ["MemoryBackend"]


class MemoryBackend(QueueBackend, MigrationSupport):
    """A queue in an in-process namespace. See :mod:`queuestore.backends.memory` for its semantics.

    Attributes:
        options: the parsed options.
        namespace: the name of the namespace the queue lives in.
    """

    def __init__(self, config: BackendConfig, options: MemoryOptions | None = None) -> None:
        super().__init__(config)
        if options is None:
            options = memory_options(config)
        self.options = options
        self.namespace = options.namespace or config.name or "default"
        self._codec = JobCodec(options.encoding)
        self._metrics = OperationMetrics(window=options.metrics_window)
        self._client = QueueClient(get_namespace(self.namespace), self.queue, self._metrics, self._check_open)
        self._q = self._client.q
        self._reader = MemoryReader(self._client, self.name)
        self._migration = MemoryMigration(self._client, self._codec)
        self._admin = MemoryAdmin(self._client, options)

    async def _close(self) -> None:
        self._client.wake_all()

    # -- core -----------------------------------------------------------------------------
    async def enqueue(self, job: Job) -> bool:
        """Store a job (ready, or delayed when ``available_at`` is in the future).

        Returns:
            True if stored; False if the id is stored already (any state) or its
            idempotency key was used within ``idempotency_window``.

        Raises:
            InvalidJobError: the job is invalid or its payload not encodable (the field is named).
            BackendClosedError: the backend is closed.
        """
        return (await self.enqueue_many([job]))[0]

    async def enqueue_many(self, jobs: Sequence[Job]) -> list[bool]:
        """Enqueue several jobs atomically; one bool per job as :meth:`enqueue`.

        Every job is validated first: one invalid job stores none.

        Raises:
            InvalidJobError: a job is invalid (the field is named).
            BackendClosedError: the backend is closed.
        """
        await self._client.enter("enqueue")
        copies = [stored_copy(job, self.queue, self._codec) for job in jobs]
        if (home := self._migration.home()) is not None:  # a migration moved the queue
            return await (await self._moved(QueueMovedError(self.name, "enqueue", home))).enqueue_many(jobs)
        with self._metrics.timed():
            self._client.sweep()
            now, window = self._client.now(), self.options.idempotency_window
            stored = [self._q.enqueue(copy, now, window) for copy in copies]
        self._metrics.record("enqueue", sum(stored))
        return stored

    async def dequeue(self, options: DequeueOptions | None = None) -> Job | None:
        """Lease the next ready job, waiting up to ``options.timeout`` for one.

        Returns:
            The job (``attempt + 1``, fresh ``lease_token``, ``lease_deadline``), or None.

        Raises:
            InvalidJobError: a negative timeout or a bad ``visibility_timeout``.
            BackendClosedError: the backend is (or gets) closed.
            TypeError: ``options`` is not a DequeueOptions (``dequeue(1.0)``).
        """
        jobs = await self._lease(dequeue_options(options), 1)
        return jobs[0] if jobs else None

    async def dequeue_many(self, options: DequeueOptions | None = None) -> list[Job]:
        """Lease up to ``options.count`` jobs, waiting up to the timeout for the first.

        Raises:
            InvalidJobError: a bad count, timeout or visibility_timeout.
            BackendClosedError: the backend is (or gets) closed.
            TypeError: ``options`` is not a DequeueOptions.
        """
        opts = dequeue_options(options, "dequeue_many")
        return await self._lease(opts, opts.checked_count())

    async def _lease(self, opts: DequeueOptions, count: int) -> list[Job]:
        await self._client.enter("dequeue")
        timeout = opts.timeout_seconds()
        visibility = opts.lease_seconds(self.options.visibility_timeout)
        give_up = anyio.current_time() + timeout
        while True:
            self._check_open("dequeue")
            with self._metrics.timed():
                self._client.sweep()
                jobs = self._q.lease(self._client.now(), visibility, count)
            if jobs:
                self._metrics.record("dequeue", len(jobs))
                return jobs
            remaining = give_up - anyio.current_time()
            if remaining <= 0:
                return []
            await self._client.wait(remaining, float(self.options.reclaim_interval))

    async def ack(self, job: JobRef) -> None:
        """Acknowledge a leased job: it is gone.

        Raises:
            JobNotFoundError: the job is not in flight.
            LeaseLostError: the given Job's lease is no longer the current one.
            InvalidJobError: ``job`` is neither a Job nor a non-empty id.
            BackendClosedError: the backend is closed.
        """
        await self._client.enter("ack")
        job_id, token = job_ref(job)
        with self._metrics.timed():
            self._client.sweep(reclaim=False)
            self._q.ack(job_id, token)
        self._metrics.record("ack")

    async def ack_many(self, jobs: Sequence[JobRef]) -> list[bool]:
        """Ack several jobs atomically; False for an unknown, not-leased or stale one.

        Raises:
            InvalidJobError: an element is neither a Job nor a non-empty id.
            BackendClosedError: the backend is closed.
        """
        await self._client.enter("ack")
        refs = [job_ref(job) for job in jobs]
        out: list[bool] = []
        with self._metrics.timed():
            self._client.sweep(reclaim=False)
            for job_id, token in refs:
                try:
                    self._q.ack(job_id, token)
                    out.append(True)
                except (JobNotFoundError, LeaseLostError):
                    out.append(False)
        self._metrics.record("ack", sum(out))
        return out

    async def nack(
        self,
        job: JobRef,
        requeue: bool = True,
        *,
        delay: float | timedelta | None = None,
        error: str | None = None,
    ) -> None:
        """Give a leased job back: ready again (or delayed), or dead-lettered.

        With ``requeue`` the job gets ``retry_count + 1`` and ``last_error = error``
        unless that exceeds ``max_retries``; then (as with ``requeue=False``) it is
        dead-lettered with ``error`` (or "max retries exceeded" / "rejected") as reason.
        Without ``delay`` the ``retry_backoff`` option's delay applies (none by default).

        Raises:
            JobNotFoundError: the job is not in flight.
            LeaseLostError: the given Job's lease is no longer the current one.
            InvalidJobError: a negative delay or a bad job argument.
            BackendClosedError: the backend is closed.
        """
        await self._client.enter("nack")
        job_id, token = job_ref(job)
        secs = None if delay is None else seconds_arg(delay, "delay")
        backoff = backoff_policy(self.options.retry_backoff)
        with self._metrics.timed():
            self._client.sweep(reclaim=False)
            self._q.nack(job_id, token, requeue, secs, error, self._client.now(), backoff)
        self._metrics.record("nack")

    async def extend_lease(self, job: JobRef, seconds: float | timedelta) -> float:
        """Push a lease's deadline to ``seconds`` from now (the token stays the same).

        Returns:
            The new deadline (epoch seconds).

        Raises:
            JobNotFoundError: the job is not in flight.
            LeaseLostError: the given Job's lease is no longer the current one.
            InvalidJobError: ``seconds`` is not > 0, or a bad job argument.
            BackendClosedError: the backend is closed.
        """
        await self._client.enter("extend_lease")
        job_id, token = job_ref(job)
        secs = seconds_arg(seconds, "seconds", allow_zero=False)
        with self._metrics.timed():
            self._client.sweep(reclaim=False)
            return self._q.extend(job_id, token, secs, self._client.now())

    async def move(self, job: JobRef, target_queue: str) -> None:
        """Move a job to ``target_queue`` (same namespace) as ready, ``origin_queue`` set.

        A leased job is guarded as in :meth:`ack`; a ready, delayed or dead job
        moves too. If the job was moved to the target from here already, this
        is a no-op (a retried move is safe).

        Raises:
            JobNotFoundError: the job is not here (and was not moved from here to the target).
            LeaseLostError: the given Job's lease is no longer the current one.
            DuplicateJobError: the target holds another job with this id.
            InvalidJobError: an empty target or the backend's own queue.
            BackendClosedError: the backend is closed.
        """
        await self._client.enter("move")
        job_id, token = job_ref(job)
        if not isinstance(target_queue, str) or not target_queue:
            raise InvalidJobError("target_queue", "must be a non-empty queue name")
        if target_queue == self.queue:
            raise InvalidJobError("target_queue", f"job is already in queue {self.queue!r}")
        with self._metrics.timed():
            self._client.sweep(reclaim=False)
            target = self._client.queue(target_queue)
            if (home := self._migration.home(target_queue)) is not None:
                raise QueueMovedError(self.name, "move", home)
            self._q.move(job_id, token, target, self._client.now())

    # -- operator: MemoryAdmin --------------------------------------------------------------
    async def redrive(self, job_ids: Sequence[str] | AllJobs, *, to_queue: str | None = None) -> int:
        """Dead jobs back to ready here (or moved to ``to_queue``) with ``retry_count`` 0.

        ``ALL`` goes a page at a time; ids not dead here are skipped, and so is a job
        whose id ``to_queue`` already holds (it stays dead here).

        Returns:
            How many jobs were redriven.

        Raises:
            InvalidJobError: bad ``job_ids`` or ``to_queue``.
            BackendClosedError: the backend is closed.
        """
        return await self._admin.redrive(job_ids, to_queue)

    async def purge(self, state: JobState, job_ids: Sequence[str] | AllJobs) -> int:
        """Remove ready, delayed or dead jobs (``ALL``: a page at a time); not counted as acked.

        Returns:
            How many jobs were removed.

        Raises:
            InvalidJobError: ``state`` is IN_FLIGHT or not a state, or bad ``job_ids``.
            BackendClosedError: the backend is closed.
        """
        return await self._admin.purge(state, job_ids)

    async def delete(self, job_id: str) -> bool:
        """Remove a job in any state; a leased job's holder then gets LeaseLostError.

        A job held by a running migration is not this queue's to delete (False).

        Returns:
            True if the job was stored here.

        Raises:
            InvalidJobError: ``job_id`` is not a non-empty str.
            BackendClosedError: the backend is closed.
        """
        return await self._admin.delete(job_id)

    # -- reading: MemoryReader --------------------------------------------------------------
    async def length(self) -> int:
        """Jobs waiting: ready + delayed (:meth:`MemoryReader.length`)."""
        return await self._reader.length()

    async def peek(self, offset: int = 0) -> Job | None:
        """A copy of the ready job at ``offset`` in dequeue order (:meth:`MemoryReader.peek`)."""
        return await self._reader.peek(offset)

    def iter(self, options: IterOptions | None = None) -> AsyncIterator[Job]:
        """Walk stored jobs a page at a time, as copies (:meth:`MemoryReader.iter`)."""
        return self._reader.iter(options)

    def capabilities(self) -> BackendCapabilities:
        """In-process: atomic, idempotent, TTL, priorities, batches; not persistent or clustered."""
        return CAPABILITIES

    async def stats(self) -> BackendStats:
        """Depths, queue totals and this instance's rates (:meth:`MemoryReader.stats`)."""
        return await self._reader.stats()

    async def health(self) -> HealthStatus:
        """Healthy while open (:meth:`MemoryReader.health`). Never raises."""
        return await self._reader.health(self._closed)

    # -- migration SPI: MemoryMigration ---------------------------------------------------
    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job | None]:
        """Copies of jobs by id in any state (:meth:`MemoryMigration.get_jobs`)."""
        return await self._migration.get_jobs(job_ids)

    async def migration_hold(self, migration_id: str, state: JobState, count: int) -> list[Job]:
        """Take up to ``count`` jobs in ``state`` into a holding area (:meth:`MemoryMigration.hold`)."""
        return await self._migration.hold(migration_id, state, count)

    async def migration_held(self, migration_id: str, count: int = 1000) -> list[Job]:
        """Up to ``count`` held jobs in hold order (:meth:`MemoryMigration.held`)."""
        return await self._migration.held(migration_id, count)

    async def migration_release(self, migration_id: str, job_ids: Sequence[str]) -> int:
        """Drop held jobs that are safe in the target (:meth:`MemoryMigration.release`)."""
        return await self._migration.release(migration_id, job_ids)

    async def migration_restore(self, migration_id: str) -> int:
        """Put every held job back where it was (:meth:`MemoryMigration.restore`)."""
        return await self._migration.restore(migration_id)

    async def import_jobs(self, jobs: Sequence[Job]) -> list[bool]:
        """Store jobs in the state each carries (:meth:`MemoryMigration.import_jobs`)."""
        return await self._migration.import_jobs(jobs)

    async def migration_record(
        self,
        op: RecordOp,
        *,
        owner: str = "",
        lease: float = 0.0,
        retention: float = 0.0,
        fields: Mapping[str, str] | None = None,
    ) -> RecordReply:
        """The queue's migration record (:meth:`MemoryMigration.record`).

        Raises:
            InvalidJobError: an unknown ``op``.
        """
        self._check_open("migration_record")
        return await self._migration.record(op, owner, lease, retention, fields or {})

    # -- maintenance ----------------------------------------------------------------------
    async def run_maintenance(self) -> None:
        """Reclaim expired leases, promote due delayed jobs, drop expired ones and dead ones
        past ``dead_retention`` / ``dead_max``, every ``reclaim_interval`` until cancelled or
        closed."""
        while not self._closed:
            await anyio.sleep(self.options.reclaim_interval)
            if not self._closed:
                self._client.sweep()
                self._admin.drop_dead()

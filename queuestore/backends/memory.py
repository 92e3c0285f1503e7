"""The ``memory`` backend: in-process, the embedded default and the reference semantics.

Queues live in a process-wide store keyed by ``options.namespace`` (default: the
config name, else ``"default"``): two backends on one namespace see the same
queues, as two backends on one Redis server do, so ``move`` works between them.
Nothing survives the process (``persistence`` is false).

Semantics every other backend must match (the conformance suite checks them):

* ready jobs: priority 9 first, FIFO within a priority; delayed jobs by due time.
* dequeue leases: ``attempt + 1``, ``started_at``, a fresh random ``lease_token``,
  ``lease_deadline = now + visibility_timeout``.
* an expired lease is reclaimed to the *tail* of its priority with
  ``retry_count + 1`` (``last_error`` "lease expired"), or dead-lettered with
  reason "lease expired" when that would exceed ``max_retries``. Reclaim runs at
  the start of every operation and every ``reclaim_interval`` in the
  maintenance loop. Dead-lettering keeps ``retry_count`` and ``attempt``.
* a waiting (ready or delayed) job past ``expires_at`` is dropped and counted
  in ``BackendStats.total_expired``; an in-flight job is not dropped.
* every public coroutine yields to the event loop once (a checkpoint, as a
  round trip to a server would) before its atomic step, so concurrent
  consumers interleave fairly; a cancellation at that point leaves nothing done.
* ``move`` sends a leased, waiting or dead job to another queue of the same
  namespace as ready, with ``origin_queue`` set; moving a job that is already
  in the target (and gone from here) is a no-op, so a retried move is safe.

Example::

    backend = await MemoryBackendFactory().create(BackendConfig(type="memory", queue="emails"))
    async with backend:  # also runs the maintenance loop
        await backend.enqueue(Job(payload={"to": "a@b.c"}))

Tests get an isolated store with ``options={"namespace": unique_namespace()}``
(:func:`queuestore.backends._memory_store.unique_namespace`) and may replace the
namespace's ``clock`` to move time without sleeping.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

import anyio
import anyio.lowlevel
import msgspec

from queuestore._args import JobRef, job_ref
from queuestore._durations import Seconds, to_seconds
from queuestore._job import Job, JobCodec, validate_job
from queuestore._metrics import OperationMetrics
from queuestore._models import (
    BackendConfig,
    DequeueOptions,
)
from queuestore.abc import BackendFactory, MigrationSupport, QueueBackend
from queuestore.backends import _memory_store as store
from queuestore.backends._memory_migration import MemoryMigrationMixin
from queuestore.backends._memory_read import MemoryReadMixin
from queuestore.errors import (
    ConfigurationError,
    DuplicateJobError,
    InvalidJobError,
    JobNotFoundError,
    LeaseLostError,
    SerializationError,
)

__all__ = ["MemoryBackend", "MemoryBackendFactory", "MemoryOptions"]

_FIELD_IN_ERROR = re.compile(r"at `\$\.([A-Za-z_]\w*)")


class MemoryOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Options of the memory backend (``BackendConfig.options``).

    Attributes:
        namespace: the in-process store to use; backends sharing it share queues.
        visibility_timeout: lease length of a dequeued job.
        reclaim_interval: how often the maintenance loop reclaims and promotes.
        idempotency_window: how long an ``idempotency_key`` dedups other ids.
        encoding: the wire format a payload must be encodable in.
        metrics_window: the window of the per-second rates in ``stats()``.
    """

    namespace: str | None = None
    visibility_timeout: Seconds = Seconds(30.0)
    reclaim_interval: Seconds = Seconds(1.0)
    idempotency_window: Seconds = Seconds(86400.0)
    encoding: Literal["msgpack", "json"] = "msgpack"
    metrics_window: Seconds = Seconds(60.0)


class MemoryBackendFactory(BackendFactory[MemoryOptions]):
    """Creates :class:`MemoryBackend` instances (backend type ``memory``)."""

    options_type = MemoryOptions

    def check(self, config: BackendConfig, options: MemoryOptions) -> None:
        """Reject zero lease/reclaim durations and a non-memory URL.

        Raises:
            ConfigurationError: naming the field.
        """
        for name in ("visibility_timeout", "reclaim_interval", "metrics_window"):
            if getattr(options, name) <= 0:
                raise ConfigurationError(f"options.{name}", "must be > 0")
        if config.url and not config.url.startswith("memory://"):
            raise ConfigurationError("url", "the memory backend takes no URL (or 'memory://')")
        if config.cluster_mode:
            raise ConfigurationError("cluster_mode", "the memory backend has no cluster mode")

    async def create(self, config: BackendConfig) -> MemoryBackend:
        """Make a memory backend and open it.

        Raises:
            ConfigurationError: the config is invalid (the field is named).
        """
        backend = MemoryBackend(config, self.parse(config))
        await backend.open()
        return backend


def seconds_arg(value: float | timedelta, field: str, *, allow_zero: bool = True) -> float:
    """A duration argument in seconds.

    Raises:
        InvalidJobError: naming ``field`` when it is negative, not finite or not a duration.
    """
    try:
        return to_seconds(value, field, allow_zero=allow_zero)
    except ConfigurationError as exc:
        raise InvalidJobError(field, exc.message) from None


class MemoryBackend(MemoryReadMixin, MemoryMigrationMixin, QueueBackend, MigrationSupport):
    """A queue in an in-process namespace. See the module docstring for its semantics."""

    def __init__(self, config: BackendConfig, options: MemoryOptions | None = None) -> None:
        super().__init__(config)
        self.options = options if options is not None else MemoryBackendFactory().parse(config)
        self.namespace = self.options.namespace or config.name or "default"
        self._ns = store.get_namespace(self.namespace)
        self._q = self._ns.queue(self.queue)
        self._codec = JobCodec(self.options.encoding)
        self._metrics = OperationMetrics(window=self.options.metrics_window)
        self._my_waiters: set[anyio.Event] = set()

    # -- plumbing used by the mixin ---------------------------------------------------------
    def _now(self) -> float:
        return self._ns.clock()

    def _sweep(self) -> None:
        res = self._q.sweep(self._now())
        self._metrics.record("dead", res.dead)
        self._metrics.record("expired", res.expired)

    def _stored_copy(self, job: Job) -> Job:
        """Validate ``job`` and return a private copy of it, stamped with this queue.

        Raises:
            InvalidJobError: naming the field.
        """
        validate_job(job)
        if job.queue and job.queue != self.queue:
            raise InvalidJobError(
                "queue", f"job is for queue {job.queue!r}, this backend serves {self.queue!r}"
            )
        data = self._codec.encode(job)  # InvalidJobError("payload") when not encodable
        try:
            return self._codec.decode(data)
        except SerializationError as exc:  # a field of the wrong type: name it
            match = _FIELD_IN_ERROR.search(str(exc))
            raise InvalidJobError(match.group(1) if match else "job", str(exc)) from None

    async def _enter(self, operation: str) -> None:
        """Start a public operation: refuse a closed backend, then yield to the event loop.

        Every operation passes this checkpoint before its atomic step, as a call to a
        real server would, so concurrent callers interleave fairly (without it, one
        consumer of a full queue would take every job before the others ever ran).
        A cancellation here leaves nothing done.

        Raises:
            BackendClosedError: the backend is (or got, while yielding) closed.
        """
        self._check_open(operation)
        await anyio.lowlevel.checkpoint()
        self._check_open(operation)

    async def _close(self) -> None:
        for event in self._my_waiters:
            event.set()

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
        await self._enter("enqueue")
        copies = [self._stored_copy(job) for job in jobs]
        with self._metrics.timed():
            self._sweep()
            now, window = self._now(), self.options.idempotency_window
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
        """
        opts = options or DequeueOptions()
        jobs = await self._lease(opts, 1)
        return jobs[0] if jobs else None

    async def dequeue_many(self, options: DequeueOptions | None = None) -> list[Job]:
        """Lease up to ``options.count`` jobs, waiting up to the timeout for the first.

        Raises:
            InvalidJobError: a bad count, timeout or visibility_timeout.
            BackendClosedError: the backend is (or gets) closed.
        """
        opts = options or DequeueOptions()
        return await self._lease(opts, opts.checked_count())

    async def _lease(self, opts: DequeueOptions, count: int) -> list[Job]:
        await self._enter("dequeue")
        timeout = opts.timeout_seconds()
        visibility = opts.lease_seconds(self.options.visibility_timeout)
        give_up = anyio.current_time() + timeout
        while True:
            self._check_open("dequeue")
            with self._metrics.timed():
                self._sweep()
                jobs = self._q.lease(self._now(), visibility, count)
            if jobs:
                self._metrics.record("dequeue", len(jobs))
                return jobs
            remaining = give_up - anyio.current_time()
            if remaining <= 0:
                return []
            await self._wait(remaining)

    async def _wait(self, remaining: float) -> None:
        """Sleep until a job may be ready: woken by a producer, or when something falls due."""
        wait = min(remaining, float(self.options.reclaim_interval))
        due = self._q.next_due()
        if due is not None:
            wait = min(wait, max(0.001, due - self._now()))
        event = anyio.Event()
        self._q.waiters.add(event)
        self._my_waiters.add(event)
        try:
            with anyio.move_on_after(wait):
                await event.wait()
        finally:
            self._q.waiters.discard(event)
            self._my_waiters.discard(event)

    async def ack(self, job: JobRef) -> None:
        """Acknowledge a leased job: it is gone.

        Raises:
            JobNotFoundError: the job is not in flight.
            LeaseLostError: the given Job's lease is no longer the current one.
            InvalidJobError: ``job`` is neither a Job nor a non-empty id.
            BackendClosedError: the backend is closed.
        """
        await self._enter("ack")
        job_id, token = job_ref(job)
        with self._metrics.timed():
            self._sweep()
            self._q.ack(job_id, token)
        self._metrics.record("ack")

    async def ack_many(self, jobs: Sequence[JobRef]) -> list[bool]:
        """Ack several jobs atomically; False for an unknown, not-leased or stale one.

        Raises:
            InvalidJobError: an element is neither a Job nor a non-empty id.
            BackendClosedError: the backend is closed.
        """
        await self._enter("ack")
        refs = [job_ref(job) for job in jobs]
        out: list[bool] = []
        with self._metrics.timed():
            self._sweep()
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
        delay: float | timedelta = 0.0,
        error: str | None = None,
    ) -> None:
        """Give a leased job back: ready again (or delayed), or dead-lettered.

        With ``requeue`` the job gets ``retry_count + 1`` and ``last_error = error``
        unless that exceeds ``max_retries``; then (as with ``requeue=False``) it is
        dead-lettered with ``error`` (or "max retries exceeded" / "rejected") as reason.

        Raises:
            JobNotFoundError: the job is not in flight.
            LeaseLostError: the given Job's lease is no longer the current one.
            InvalidJobError: a negative delay or a bad job argument.
            BackendClosedError: the backend is closed.
        """
        await self._enter("nack")
        job_id, token = job_ref(job)
        secs = seconds_arg(delay, "delay")
        with self._metrics.timed():
            self._sweep()
            self._q.nack(job_id, token, requeue, secs, error, self._now())
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
        await self._enter("extend_lease")
        job_id, token = job_ref(job)
        secs = seconds_arg(seconds, "seconds", allow_zero=False)
        with self._metrics.timed():
            self._sweep()
            return self._q.extend(job_id, token, secs, self._now())

    async def move(self, job: JobRef, target_queue: str) -> None:
        """Move a job to ``target_queue`` (same namespace) as ready, ``origin_queue`` set.

        A leased job is guarded as in :meth:`ack`; a ready, delayed or dead job
        moves too. If the job is already in the target and gone from here, this
        is a no-op (a retried move is safe).

        Raises:
            JobNotFoundError: the job is in neither queue.
            LeaseLostError: the given Job's lease is no longer the current one.
            DuplicateJobError: the target holds another job with this id.
            InvalidJobError: an empty target or the backend's own queue.
            BackendClosedError: the backend is closed.
        """
        await self._enter("move")
        job_id, token = job_ref(job)
        if not isinstance(target_queue, str) or not target_queue:
            raise InvalidJobError("target_queue", "must be a non-empty queue name")
        if target_queue == self.queue:
            raise InvalidJobError("target_queue", f"job is already in queue {self.queue!r}")
        target = self._ns.queue(target_queue)
        with self._metrics.timed():
            self._sweep()
            target.sweep(self._now())
            if job_id not in self._q.jobs and job_id in target.jobs:
                return
            rec = self._q.take_for_move(job_id, token)
            if job_id in target.jobs:
                raise DuplicateJobError(job_id, f"queue {target_queue!r} already holds job {job_id!r}")
            self._q.move_to(rec, target, self._now())

    # -- maintenance ----------------------------------------------------------------------
    async def run_maintenance(self) -> None:
        """Reclaim expired leases, promote due delayed jobs and drop expired ones, every
        ``reclaim_interval`` until cancelled or closed."""
        while not self._closed:
            await anyio.sleep(self.options.reclaim_interval)
            if not self._closed:
                self._sweep()

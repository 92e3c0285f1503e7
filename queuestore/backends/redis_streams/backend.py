"""The ``redis-streams`` backend: consumer groups, pending-list leases, replay.

A queue is one stream read by one (or several, fan-out) consumer groups. The
lease *is* the pending list: ``dequeue`` reads with XREADGROUP, a lease lasts
``claim_min_idle`` seconds of idleness (``visibility_timeout`` is its alias;
setting both to different values is a ConfigurationError), and expired leases
of any consumer of the group are reclaimed with XAUTOCLAIM by the next
``dequeue`` of that group and handed to its caller. The delivery count drives
``attempt`` / ``retry_count`` and dead-lettering past ``max_retries``.

Every key a script touches is passed in KEYS (the layout is in :mod:`.layout`). Ack is
XACK + XDEL in one script (``retention: delete``, the default) once no other group still
needs the entry; ``retention: retain`` keeps acked entries for replay and trims them
(maintenance) with MINID at or below the oldest entry any group still needs, down to
``max_length`` entries. MAXLEN is never used, so no unacked entry is trimmed. Entries
deleted behind our back while pending are released and counted (``lost`` in health
details), never retried. Reads skip an entry that does not decode with a warning naming it
(``corrupt_entries`` in health details); ``dequeue`` dead-letters it; ``get_jobs`` raises
SerializationError naming it; the migration SPI returns a stand-in marked ``"corrupt: ..."``.

Every mutating script call carries a call id: the script records its reply (bounded, per
queue) and answers a retry of the same call with it, so redis-py's transparent retries never
act twice; a call whose reply never came back raises OutcomeUnknownError. Every script reads
the server's clock (``TIME``): lease deadlines are the server's. A cancelled ``dequeue`` hands
back what it leased. See ``docs/reliability.md``.

The backend holds a :class:`~.store.StreamsStore` (keys, group, consumer, runners) and
delegates to the role modules: :mod:`.take` (dequeue), :mod:`.settle` (ack, nack, extend,
move), :mod:`.dlq` (redrive, purge, delete, dead-letter retention), :mod:`.read` and
:mod:`.iterate` (length, peek, stats, health, iter), :mod:`.lookup` (get_jobs) and
:mod:`.migration` (migration SPI); the scripts are in ``lua/``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import anyio

from queuestore._args import JobRef, check_job_queue, dequeue_options
from queuestore._job import AllJobs, Job, JobState, validate_job
from queuestore._models import (
    BackendCapabilities,
    BackendConfig,
    BackendStats,
    DequeueOptions,
    HealthStatus,
    IterOptions,
)
from queuestore._retention import dead_max_limit
from queuestore.abc import LeaseHandBack, MigrationSupport
from queuestore.backends._redis.base import RedisBackendBase
from queuestore.backends._redis.scripts import MAX_JOBS_PER_SCRIPT, lua_folder
from queuestore.backends.redis_streams import dlq, iterate, lookup, migration, read, settle
from queuestore.backends.redis_streams.layout import StreamKeys, job_args
from queuestore.backends.redis_streams.lone import enqueue_lone
from queuestore.backends.redis_streams.options import RedisStreamsOptions
from queuestore.backends.redis_streams.store import StreamsStore
from queuestore.backends.redis_streams.take import (
    Share,
    Take,
    dequeue,
    give_back_share,
    hand_back,
    share,
    take,
)
from queuestore.errors import QueueMovedError

__all__ = ["RedisStreamsBackend"]


class RedisStreamsBackend(RedisBackendBase, MigrationSupport, LeaseHandBack):
    """A queue on a Redis stream (see the module docstring)."""

    lua_folder = lua_folder(__name__.rpartition(".")[0])
    script_names = (
        "enqueue",
        "enqueue_one",
        "take",
        "lease",
        "ack",
        "settle",
        "migrate",
        "lookup",
        "dlq",
        "forget",
    )
    options: RedisStreamsOptions

    def __init__(self, config: BackendConfig, options: RedisStreamsOptions) -> None:
        super().__init__(config, options)
        #: the queue's keys and this instance's group, consumer and runners
        self.store = StreamsStore(self, options)

    @property
    def skeys(self) -> StreamKeys:
        """Every key of the queue."""
        return self.store.keys

    @property
    def group(self) -> str:
        """The consumer group ``dequeue`` reads for by default."""
        return self.store.group

    @property
    def consumer(self) -> str:
        """This instance's consumer name in its groups."""
        return self.store.consumer

    async def _open(self) -> None:
        await super()._open()
        for group in dict.fromkeys([self.store.group, *self.options.groups]):
            await self.store.ensure_group(group)

    # -- enqueue ---------------------------------------------------------------------------------
    async def enqueue(self, job: Job) -> bool:
        """Store a job (ready, or delayed when ``available_at`` is ahead); False if already stored.

        Raises:
            InvalidJobError, OutcomeUnknownError, BackendError.
        """
        row = self._enqueue_row(job)  # this call's own validation error, if any
        try:
            if not self._lead("enqueue"):  # one in flight: go with the next batch
                return bool(await self._coalesce("enqueue", self._enqueue_rows, row))
            try:
                if self._durable_waits:  # one script, then WAIT: a declined lean call would WAIT too
                    return bool((await self._enqueue_rows([row]))[0])
                stored = await enqueue_lone(self.store, row)
                self.metrics.record("enqueue", int(stored))
                return stored
            finally:
                if self.options.coalesce:
                    self._coalescer.end("enqueue")
        except QueueMovedError as exc:  # a migration moved the queue: the call goes there
            return await (await self._moved(exc)).enqueue(job)

    async def enqueue_many(self, jobs: Sequence[Job]) -> list[bool]:
        """Enqueue several jobs: one script call per 1,000 jobs, one after the other.

        A call whose script calls straddle a migration's seal: the jobs stored before it report
        True or False as stored here; the rest go to the queue's new home, and their results
        are what it answered. A call that fails part way raises; the jobs of the script calls
        before stay stored (enqueue is idempotent by id: the same call again reports them False).

        Raises:
            InvalidJobError, OutcomeUnknownError, BackendError.
            QueueMovedError: the queue moved and no BackendManager follows it for this backend.
        """
        for job in jobs:
            self._check_enqueued(job)
        rows = [job_args(self.codec, self.queue, job) for job in jobs]
        out: list[bool] = []
        for start in range(0, len(rows), MAX_JOBS_PER_SCRIPT):
            try:
                out += await self._enqueue_rows(rows[start : start + MAX_JOBS_PER_SCRIPT])
            except QueueMovedError as exc:  # a migration moved the queue: the rest go there
                return out + await (await self._moved(exc)).enqueue_many(jobs[start:])
        return out

    def _check_enqueued(self, job: Job) -> None:
        validate_job(job)
        check_job_queue(job, self.queue)

    def _enqueue_row(self, job: Job) -> list[Any]:
        self._check_enqueued(job)
        return job_args(self.codec, self.queue, job)

    async def _enqueue_rows(self, rows: list[list[Any]]) -> list[Any]:
        """Store validated jobs (one row each) in one script call: the body of ``enqueue_many``
        and the flush of coalesced ``enqueue`` calls."""
        out = await self.store.enqueue_rows("enqueue", rows)
        self.metrics.record("enqueue", sum(out))
        return list(out)

    # -- dequeue ---------------------------------------------------------------------------------
    async def dequeue(self, options: DequeueOptions | None = None) -> Job | None:
        """Lease the next job (reclaimed expired leases first), waiting up to ``timeout``.

        Raises:
            TypeError: ``options`` is not a DequeueOptions (a bare timeout names the fix).
            OperationTimeoutError: no result within ``timeout`` + ``call_margin`` (a stalled or
                unreachable server; see :meth:`RedisBackendBase._within`).
            InvalidJobError, OutcomeUnknownError, BackendError.
        """
        jobs = await self._dequeue(dequeue_options(options), 1)
        return jobs[0] if jobs else None

    async def dequeue_many(self, options: DequeueOptions | None = None) -> list[Job]:
        """Lease up to ``count`` jobs in one script call (waiting for the first).

        Raises:
            TypeError: ``options`` is not a DequeueOptions (a bare timeout names the fix).
            OperationTimeoutError: no result within ``timeout`` + ``call_margin`` (a stalled or
                unreachable server; see :meth:`RedisBackendBase._within`).
            InvalidJobError, OutcomeUnknownError, BackendError.
        """
        opts = dequeue_options(options, "dequeue_many")
        return await self._dequeue(opts, opts.checked_count())

    async def _dequeue(self, opts: DequeueOptions, count: int) -> list[Job]:
        """Lease up to ``count`` jobs within ``opts.timeout`` + ``call_margin`` in all."""
        shared = self._take_coalesced if count == 1 and self.options.coalesce else None
        return await self._within(
            "dequeue", opts.timeout_seconds(), lambda: dequeue(self.store, opts, count, shared), count
        )

    async def _take_coalesced(self, group: str, consumer: str, lease: float) -> Take:
        """One ``dequeue`` call's take, shared with the concurrent calls of the same group,
        consumer and lease length (one script call for all of them). Cancelled before it got
        its share, the share is handed back (by the flush, or here if the flush was done)."""
        key = ("dequeue", group, consumer, lease)
        if self._coalescer.begin(key):  # nothing in flight: this take goes at once, alone
            try:
                return await take(self.store, group, consumer, 1, lease)
            finally:
                self._coalescer.end(key)
        mine = Share(key)
        try:
            got: Take = await self._coalesce(key, self._take_shared, mine)
        except anyio.get_cancelled_exc_class():
            mine.cancelled = True
            await give_back_share(self.store, group, [mine])
            raise
        return got

    async def _take_shared(self, shares: list[Share]) -> list[Any]:
        """The flush of coalesced ``dequeue`` calls: one take for all, a job each while there are jobs."""
        _, group, consumer, lease = shares[0].key
        takes = share(await take(self.store, group, consumer, len(shares), lease), len(shares))
        for s, t in zip(shares, takes, strict=True):
            s.take = t
        await give_back_share(self.store, group, shares)
        return [s.take for s in shares]

    # -- settle ----------------------------------------------------------------------------------
    async def ack(self, job: JobRef) -> None:
        """XACK + XDEL (and bookkeeping) in one script.

        Raises:
            JobNotFoundError, LeaseLostError, InvalidJobError, OutcomeUnknownError, BackendError.
        """
        ref = settle.ack_ref(self.store.group, job)
        if not self._lead("ack"):  # one in flight: go with the next batch
            await self._coalesce("ack", self._ack_refs, ref)
            return
        try:
            error = (await self._ack_refs([ref]))[0]
        finally:
            if self.options.coalesce:
                self._coalescer.end("ack")
        if error is not None:
            raise error

    async def ack_many(self, jobs: Sequence[JobRef]) -> list[bool]:
        """Ack several jobs, one script call per 1,000; False for a stale token or unknown id.
        A call that fails part way raises; the jobs of the script calls before stay acked.

        Raises:
            InvalidJobError, OutcomeUnknownError, BackendError.
        """
        group = self.store.group
        calls: list[list[str]] = []  # every job checked before any is acked
        for start in range(0, len(jobs), MAX_JOBS_PER_SCRIPT):
            part = jobs[start : start + MAX_JOBS_PER_SCRIPT]
            runs = settle.take_ack_args(part)
            calls.append(
                runs if runs is not None else settle.ack_args([settle.ack_ref(group, j) for j in part])
            )
        out: list[bool] = []
        for runs in calls:
            out += [s == 1 for s in await settle.acks_of(self.store, runs)]
        return out

    async def _ack_refs(self, refs: list[settle.AckRef]) -> list[Any]:
        """Ack jobs in one script call; each gets None or its own error: the body of ``ack`` and
        the flush of coalesced ``ack`` calls."""
        statuses = await settle.acks(self.store, refs)
        return [settle.settle_error(s, ref[0]) for ref, s in zip(refs, statuses, strict=True)]

    async def nack(
        self,
        job: JobRef,
        requeue: bool = True,
        *,
        delay: float | timedelta | None = None,
        error: str | None = None,
    ) -> None:
        """Retry (new entry, or delayed) or dead-letter, and release the old entry, in one script;
        without ``delay``, the ``retry_backoff`` option's delay (none: ready at once).

        Raises:
            JobNotFoundError, LeaseLostError, InvalidJobError, OutcomeUnknownError, BackendError.
        """
        await settle.nack(self.store, job, requeue, delay, error)

    async def extend_lease(self, job: JobRef, seconds: float | timedelta) -> float:
        """Move the lease record's deadline to ``seconds`` from now on the server's clock and
        return it as stored (the entry stays pending).

        Raises:
            JobNotFoundError, LeaseLostError, InvalidJobError, OutcomeUnknownError, BackendError.
        """
        return await settle.extend_lease(self.store, job, seconds)

    async def move(self, job: JobRef, target_queue: str) -> None:
        """Move a job (leased, ready, delayed or dead) to another queue, arriving ready.

        Raises:
            JobNotFoundError, LeaseLostError, InvalidJobError, OutcomeUnknownError, BackendError.
        """
        await settle.move(self.store, job, target_queue)

    # -- operator: dead letters, purge, delete (see :mod:`.dlq`) ----------------------------------
    async def redrive(self, job_ids: Sequence[str] | AllJobs, *, to_queue: str | None = None) -> int:
        """Dead jobs back to ready at the tail of the stream (or into ``to_queue``), with
        ``retry_count`` 0 and their history kept; with several groups, back to the group each
        died in. ``ALL``: page by page, one script call each.

        Raises:
            InvalidJobError: bad ``job_ids`` or ``to_queue``.
            OutcomeUnknownError, BackendError.
        """
        return await dlq.redrive(self.store, job_ids, to_queue)

    async def purge(self, state: JobState, job_ids: Sequence[str] | AllJobs) -> int:
        """Remove READY, DELAYED or DEAD jobs (their entries deleted); not counted as acked.

        Raises:
            InvalidJobError: ``state`` is IN_FLIGHT or not a state (``state``); bad ``job_ids``.
            OutcomeUnknownError, BackendError.
        """
        return await dlq.purge(self.store, state, job_ids)

    async def delete(self, job_id: str) -> bool:
        """Remove one job in any state (a leased one: its holder then gets LeaseLostError);
        a job held by a migration or mid cross-slot move is not removed (False).

        Raises:
            InvalidJobError: ``job_id`` is not a non-empty str.
            OutcomeUnknownError, BackendError.
        """
        return await dlq.delete(self.store, job_id)

    # -- reads -----------------------------------------------------------------------------------
    async def length(self) -> int:
        """Ready (entries not yet delivered to the configured group) + delayed jobs.

        Raises:
            BackendError.
        """
        return await read.length(self.store)

    async def peek(self, offset: int = 0) -> Job | None:
        """The ready entry at ``offset`` after the group's last-delivered id (reclaimable
        expired leases are served before these and are not counted here).

        Raises:
            InvalidJobError, BackendError.
        """
        return await read.peek(self.store, offset)

    def iter(self, options: IterOptions | None = None) -> AsyncIterator[Job]:
        """Walk jobs page by page: per state, in dequeue (stream) order (see :mod:`.iterate`).

        Raises:
            InvalidJobError: a bad page size (at once); BackendError while iterating.
        """
        opts = options or IterOptions()
        opts.checked_count()
        return iterate.iter_jobs(self.store, opts)

    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job | None]:
        """Look jobs up by id in any state (see :mod:`.lookup`).

        Raises:
            InvalidJobError, SerializationError, BackendError.
        """
        return await lookup.get_jobs(self.store, job_ids)

    def capabilities(self) -> BackendCapabilities:
        """Streams: groups, replay, atomic ack, TTL, batches; no priorities."""
        return self._base_capabilities(
            atomic_ack=True, consumer_groups=True, replay=True, idempotent_enqueue=True,
            time_to_live=True, prioritization=False, batch_operations=True,
        )  # fmt: skip

    async def stats(self) -> BackendStats:
        """Depth per state, stream length, consumer lag, oldest pending age, rates.

        Raises:
            BackendError: the store failed.
        """
        return await read.stats(self.store)

    async def health(self) -> HealthStatus:
        """The common checks plus consumer lag, pending count and oldest pending age in details."""
        status = await super().health()
        await read.add_health_details(self.store, status)
        return status

    # -- migration SPI ---------------------------------------------------------------------------
    async def migration_hold(self, migration_id: str, state: JobState, count: int) -> list[Job]:
        """Take up to ``count`` READY / DELAYED / DEAD jobs into the holding area.

        Raises:
            InvalidJobError, BackendError.
        """
        return await migration.hold(self.store, migration_id, state, count)

    async def migration_held(self, migration_id: str, count: int = 1000) -> list[Job]:
        """Jobs in the holding area, in hold order.

        Raises:
            InvalidJobError, BackendError.
        """
        return await migration.held(self.store, migration_id, count)

    async def migration_release(self, migration_id: str, job_ids: Sequence[str]) -> int:
        """Forget held jobs (they are safe in the target).

        Raises:
            InvalidJobError, BackendError.
        """
        return await migration.release(self.store, migration_id, job_ids)

    async def migration_restore(self, migration_id: str) -> int:
        """Put held jobs back, keeping the old dequeue order.

        Raises:
            InvalidJobError, BackendError.
        """
        return await migration.restore(self.store, migration_id)

    async def migration_give_back(self, jobs: Sequence[Job]) -> None:
        """Hand back leased jobs nobody processed: to the stream's tail, the attempt not
        counted (a job no longer leased under its token is left alone). A failure is
        logged; such a job comes back when its lease expires."""
        await hand_back(self.store, "", self.store.group, jobs)

    async def import_jobs(self, jobs: Sequence[Job]) -> list[bool]:
        """Store jobs in their carried state (READY, DELAYED, DEAD), idempotently by id.

        Raises:
            InvalidJobError, BackendError.
        """
        return await migration.import_jobs(self.store, jobs)

    # -- maintenance -------------------------------------------------------------------------------
    async def sweep(self) -> int:
        """Promote due delayed jobs, drop expired ones, trim retained entries, then drop dead
        letters past ``dead_retention`` / ``dead_max`` (oldest first); return the entries trimmed
        plus the dead letters dropped.

        Raises:
            BackendError.
        """
        trimmed = await self.store.sweep()
        o = self.options
        dropped = await dlq.prune_dead(
            self.store, float(o.dead_retention), dead_max_limit(o.dead_max), o.reclaim_batch
        )
        return trimmed + dropped

    async def run_maintenance(self) -> None:
        """Every ``reclaim_interval``: promote due delayed jobs, drop expired ones, trim retained,
        drop dead letters past their retention or count."""
        while True:
            with contextlib.suppress(Exception):  # counted in metrics by _script; keep running
                await self.sweep()
            await anyio.sleep(float(self.options.reclaim_interval))

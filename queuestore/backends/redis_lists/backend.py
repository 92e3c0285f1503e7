"""The ``redis-lists`` backend: the default, on standalone Redis and Redis Cluster.

Every transition is one Lua script (``lua/*.lua`` of this package) that gets every key
it touches in KEYS; all keys of a queue share the hash tag ``{queue}``, so the same
scripts run on a cluster (the key layout: :mod:`.layout`).

Ready jobs wait in Redis LISTs, one per priority: enqueue and dequeue are O(1) per job,
and a plain producer can ``LPUSH`` JSON entries onto the queue's ``ready`` list (adopted
by the next dequeue). The job record is the truth: a job that leaves the middle of a list
by id (move, TTL) leaves a stale entry behind, which is skipped and dropped when popped.
Leases, delayed jobs and dead letters are sorted sets. The sweep (reclaim, promote, TTL,
idempotency expiry) runs when the queue's next due time, kept in O(1), has come.

:class:`RedisListsBackend` holds the queue's collaborators in a
:class:`~.context.ListsContext` and delegates to the role modules: :mod:`.batches`
(store, lease and ack bodies), :mod:`.read`, :mod:`.moves` and :mod:`.migration`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from importlib.resources.abc import Traversable
from typing import Any, ClassVar

import anyio
import anyio.lowlevel

from queuestore._args import JobRef, checked_job_ids, dequeue_options, job_ref, seconds_arg, text
from queuestore._backoff import backoff_policy
from queuestore._job import AllJobs, Job, JobState
from queuestore._logging import get_logger, log_dead_lettered
from queuestore._models import BackendCapabilities, BackendConfig, BackendStats, DequeueOptions, IterOptions
from queuestore.abc import LeaseHandBack, MigrationSupport
from queuestore.backends._redis.base import RedisBackendBase
from queuestore.backends._redis.coalesce import outcomes
from queuestore.backends._redis.errors import translating
from queuestore.backends._redis.scripts import MAX_JOBS_PER_SCRIPT, lua_folder
from queuestore.backends.redis_lists import admin, batches, leasing, migration, moves, read
from queuestore.backends.redis_lists.context import ListsContext
from queuestore.backends.redis_lists.layout import LAYOUT_NAME, LUA_PREAMBLE, ListsLayout, ack_ref, check_code
from queuestore.backends.redis_lists.lone import store_lone
from queuestore.backends.redis_lists.options import RedisListsOptions
from queuestore.errors import ConfigurationError, QueueMovedError

__all__ = ["RedisListsBackend"]

_log = get_logger("backends.redis_lists")


class RedisListsBackend(RedisBackendBase, MigrationSupport, LeaseHandBack):
    """A queue on Redis (standalone or cluster) with atomic Lua transitions and leases.

    Args:
        config: the generic backend config (url, cluster, queue...).
        options: the typed options (see :class:`RedisListsOptions`).
    """

    lua_folder: ClassVar[Traversable] = lua_folder(__package__)
    lua_preamble: ClassVar[str] = LUA_PREAMBLE
    script_names: ClassVar[Sequence[str]] = (
        *("enqueue", "enqueue_one", "dequeue", "ack", "nack", "extend", "page", "ready_page", "peek"),
        *("stats", "lookup", "check"),
        *("move", "move_out", "move_in", "move_done", "moves_due", "hold", "release", "restore", "giveback"),
        *("redrive", "purge", "delete", "drop_dead"),
    )

    def __init__(self, config: BackendConfig, options: RedisListsOptions) -> None:
        super().__init__(config, options)
        self.lists_options = options
        self.layout = ListsLayout(self.keys, self.codec)
        #: this queue's key block (passed on every script call; not to be mutated)
        self.block = self.layout.block
        self._ctx = ListsContext(
            name=self.name,
            layout=self.layout,
            options=options,
            metrics=self.metrics,
            script=self._script,
            scripts=self._scripts,
            replies=self._script_replies,
            command=self._call,
            connection=lambda: self.conn,
        )
        self._waits = leasing.LeaseWaits(self._ctx)

    async def _open(self) -> None:
        """Connect, load the scripts, then make sure the queue's keys hold this layout.

        Raises:
            ConfigurationError: the keys of this queue hold another layout (named).
            ConnectionFailedError: the server is unreachable.
        """
        await super()._open()
        try:
            keys = [*self.block, self.keys.key("seq")]
            with translating(self.name, "connect"):
                found = text(await self.script_set.run(self.conn.client, "check", keys, []))
            if found:
                raise ConfigurationError(
                    "queue",
                    f"the keys of queue {self.queue!r} under {self.keys.base!r} hold {found}; "
                    f"this backend reads only {LAYOUT_NAME}: use another key_prefix or queue, "
                    "or move the jobs with a migration",
                )
        except BaseException:
            await super()._close()
            raise

    async def _close(self) -> None:
        # wake blocked consumers first (their dequeue then raises BackendClosedError), so no
        # blocking call is retried on a client that is being closed
        self._waits.cancel()
        await anyio.lowlevel.checkpoint()
        await super()._close()

    # -- enqueue -------------------------------------------------------------------------
    async def enqueue(self, job: Job) -> bool:
        """Store a job as ready (or delayed); False if its id or idempotency key is stored.

        Raises:
            InvalidJobError: the job is invalid (the field is named).
            BackendError: the store failed (ConnectionFailedError, OperationTimeoutError...).
        """
        rows = batches.store_rows(self._ctx, [job], importing=False)  # this call's own validation error
        try:
            if not self._lead("enqueue"):  # one in flight: go with the next batch
                return bool(await self._coalesce("enqueue", self._enqueue_flush, rows[0]))
            try:
                if self._durable_waits:  # one script, then WAIT: a declined lean call would WAIT too
                    return (await batches.store(self._ctx, "enqueue", rows, importing=False))[0]
                return await store_lone(self._ctx, rows[0])
            finally:
                if self.options.coalesce:
                    self._coalescer.end("enqueue")
        except QueueMovedError as exc:  # a migration moved the queue: the call goes there
            return await (await self._moved(exc)).enqueue(job)

    async def _enqueue_flush(self, rows: list[list[Any]]) -> list[Any]:
        """Coalesced ``enqueue`` calls: their validated rows, stored as one batch (a row that a
        seal refused gets its QueueMovedError: that caller's job goes to the new home)."""
        return list(await batches.store_each(self._ctx, "enqueue", rows, importing=False))

    async def enqueue_many(self, jobs: Sequence[Job]) -> list[bool]:
        """Enqueue jobs: ``batch_size`` per script, the scripts pipelined (one round trip
        for up to ``batch_size * pipeline_size`` jobs).

        A call whose scripts straddle a migration's seal: the rows stored before it report
        True or False as stored here; only the refused rows go to the queue's new home, and
        their results are what it answered.

        Raises:
            InvalidJobError, BackendError.
            QueueMovedError: the queue moved and no BackendManager follows it for this
                backend (the rows stored before the seal stay stored here).
        """
        rows = batches.store_rows(self._ctx, list(jobs), importing=False)
        out = await batches.store_each(self._ctx, "enqueue_many", rows, importing=False)
        refused: list[int] = []
        moved: QueueMovedError | None = None
        for i, r in enumerate(out):
            if isinstance(r, QueueMovedError):
                refused.append(i)
                moved = r
        if moved is not None:  # sealed mid-call: the refused rows go to the new home
            there = await (await self._moved(moved)).enqueue_many([jobs[i] for i in refused])
            for i, stored in zip(refused, there, strict=True):
                out[i] = stored
        return [r is True for r in out]

    # -- dequeue (see .leasing) ----------------------------------------------------------
    async def _take(self, op: str, count: int, options: DequeueOptions | None) -> list[Job]:
        """Lease up to ``count`` jobs (a script call per 1,000), waiting up to the timeout for the first;
        the whole call (waits, retries, reconnects) bounded by the timeout + ``call_margin``."""

        async def step(visibility: float) -> batches.Leased:
            if count == 1 and self.options.coalesce:
                key = ("dequeue", visibility)
                if self._coalescer.begin(key):  # nothing in flight: this lease goes at once, alone
                    try:
                        return await batches.lease(self._ctx, op, 1, visibility, per_script=1)
                    finally:
                        self._coalescer.end(key)
                share = leasing.Share(visibility)
                return await leasing.take_share(
                    self._ctx, share, lambda s: self._coalesce(key, self._lease_flush, s)
                )
            per_script = min(count, MAX_JOBS_PER_SCRIPT)
            return await batches.lease(self._ctx, op, count, visibility, per_script=per_script)

        timeout = 0.0 if options is None else options.timeout_seconds()
        return await self._within(op, timeout, lambda: self._waits.take(op, options, step), count)

    async def _lease_flush(self, shares: list[leasing.Share]) -> list[Any]:
        """Coalesced ``dequeue`` calls (one lease length): a job each while there are jobs."""
        return await leasing.lease_each(self._ctx, shares)

    async def dequeue(self, options: DequeueOptions | None = None) -> Job | None:
        """Lease the next ready job, waiting up to ``options.timeout`` (0: don't wait).

        Cancelled while its lease script may have run, it hands back what that script leased
        (the attempt not counted) before the cancellation goes on.

        Raises:
            TypeError: ``options`` is not a DequeueOptions (a bare timeout names the fix).
            InvalidJobError: bad options (negative timeout...).
            OperationTimeoutError: no result within ``timeout`` + ``call_margin`` (a stalled or
                unreachable server; see :meth:`RedisBackendBase._within`).
            OutcomeUnknownError: a lease script's reply was lost even to its retries.
            BackendError: the store failed.
        """
        opts = None if options is None else dequeue_options(options)
        jobs = await self._take("dequeue", 1, opts)
        return jobs[0] if jobs else None

    async def dequeue_many(self, options: DequeueOptions | None = None) -> list[Job]:
        """Lease up to ``options.count`` jobs, waiting up to timeout for the first: one script
        call, or one per 1,000 jobs for a larger count (until the queue runs dry).

        Raises:
            TypeError: ``options`` is not a DequeueOptions (a bare timeout names the fix).
            OperationTimeoutError: no result within ``timeout`` + ``call_margin``.
            InvalidJobError, OutcomeUnknownError, BackendError.
        """
        opts = dequeue_options(options, "dequeue_many")
        return await self._take("dequeue_many", opts.checked_count(), opts)

    # -- ack / nack / extend -------------------------------------------------------------
    async def ack(self, job: JobRef) -> None:
        """Acknowledge a leased job: it is gone.

        Raises:
            JobNotFoundError: the job is not in flight.
            LeaseLostError: the given Job's lease is no longer the current one.
            BackendError: the store failed.
        """
        ref = ack_ref(job)
        job_id = ref[0]
        if not self._lead("ack"):  # one in flight: go with the next batch
            await self._coalesce("ack", self._ack_flush, ref)
            return
        try:
            code = (await batches.ack_codes(self._ctx, "ack", [ref]))[0]
        finally:
            if self.options.coalesce:
                self._coalescer.end("ack")
        check_code(code, job_id)
        self.metrics.record("ack")

    async def _ack_flush(self, refs: list[tuple[str, str]]) -> list[Any]:
        """Coalesced ``ack`` calls, acked as one batch; each gets None or its own error."""
        codes = await batches.ack_codes(self._ctx, "ack", refs)
        out = outcomes(zip((job_id for job_id, _ in refs), codes, strict=True), check_code)
        self.metrics.record("ack", out.count(None))
        return out

    async def ack_many(self, jobs: Sequence[JobRef]) -> list[bool]:
        """Ack several jobs, ``batch_size`` per script, pipelined; False per stale or unknown job.

        Raises:
            InvalidJobError, BackendError.
        """
        refs = [ack_ref(job) for job in jobs]
        out = [code == 1 for code in await batches.ack_codes(self._ctx, "ack_many", refs)]
        self.metrics.record("ack", sum(out))
        return out

    async def nack(
        self,
        job: JobRef,
        requeue: bool = True,
        *,
        delay: float | timedelta | None = None,
        error: str | None = None,
    ) -> None:
        """Give a leased job back: ready (or delayed) with retry_count + 1, or dead-lettered
        (``requeue=False``, or past max_retries) with ``error`` as the reason. Without
        ``delay`` the ``retry_backoff`` option's delay applies (computed by the script from the
        stored retry count; none by default).

        Raises:
            JobNotFoundError, LeaseLostError, InvalidJobError, BackendError.
        """
        job_id, token = job_ref(job)
        secs: float | str = "" if delay is None else seconds_arg(delay, "delay")
        cid = self._ctx.call_id()
        args = [job_id, token or "", int(bool(requeue)), secs, int(error is not None), error or "", cid]
        backoff = backoff_policy(self.options.retry_backoff)
        if delay is None and backoff is not None:
            args += backoff.script_args()
        code, where = await self._ctx.mutate("nack", "nack", self.block, args)
        check_code(int(code), job_id)
        self.metrics.record("nack")
        if where == b"x":
            self.metrics.record("dead")
            log_dead_lettered(_log, self.queue, self.name, job_id)

    async def extend_lease(self, job: JobRef, seconds: float | timedelta) -> float:
        """Push a lease's deadline to ``seconds`` from now (server time); return it.

        The call carries a call id: a re-sent call (its reply was lost) returns the deadline its
        first run stored, and moves it no further.

        Raises:
            JobNotFoundError, LeaseLostError, InvalidJobError: as their names say.
            OutcomeUnknownError: the script's reply was lost even to its retries.
            BackendError: the store failed.
        """
        job_id, token = job_ref(job)
        secs = seconds_arg(seconds, "seconds", allow_zero=False)
        args = [job_id, token or "", secs, self._ctx.call_id()]
        code, deadline = await self._ctx.mutate("extend_lease", "extend", self.layout.state_block, args)
        check_code(int(code), job_id)
        return float(deadline)

    # -- operator calls (see .admin) -------------------------------------------------------
    async def redrive(self, job_ids: Sequence[str] | AllJobs, *, to_queue: str | None = None) -> int:
        """Dead jobs back to ready here, at the tail of their priority, with ``retry_count`` 0
        (``ALL``: a page per script), or moved to ``to_queue`` (the move machinery; a job
        whose id the target stores already stays dead here). Ids not dead here are skipped.

        Returns:
            How many jobs were redriven.

        Raises:
            InvalidJobError: bad ``job_ids`` or ``to_queue``.
            OutcomeUnknownError: a script's reply was lost even to its retries.
            BackendError: the store failed.
        """
        return await admin.redrive(self._ctx, job_ids, to_queue)

    async def purge(self, state: JobState, job_ids: Sequence[str] | AllJobs) -> int:
        """Remove ready, delayed or dead jobs (``ALL``: a page per script); not counted as acked.

        Returns:
            How many jobs were removed.

        Raises:
            InvalidJobError: ``state`` is IN_FLIGHT or not a state, or bad ``job_ids``.
            OutcomeUnknownError: a script's reply was lost even to its retries.
            BackendError: the store failed.
        """
        return await admin.purge(self._ctx, state, job_ids)

    async def delete(self, job_id: str) -> bool:
        """Remove a job in any state; a leased job's holder then gets LeaseLostError (until
        the lease's deadline). A job held by a migration or moving to another queue is not
        deleted (False).

        Returns:
            True if the job was stored here and is now gone.

        Raises:
            InvalidJobError: ``job_id`` is not a non-empty str.
            OutcomeUnknownError: the script's reply was lost even to its retries.
            BackendError: the store failed.
        """
        return await admin.delete(self._ctx, job_id)

    # -- reads (see .read) ---------------------------------------------------------------
    async def length(self) -> int:
        """Jobs waiting: ready + delayed.

        Raises:
            BackendError: the store failed.
        """
        ready, delayed, _, _ = await read.depths(self._ctx, "length")
        return ready + delayed

    async def peek(self, offset: int = 0) -> Job | None:
        """The ready job at ``offset`` in dequeue order (due delayed jobs promoted first).

        Raises:
            InvalidJobError: offset < 0.
            BackendError: the store failed.
        """
        return await read.peek(self._ctx, offset)

    def iter(self, options: IterOptions | None = None) -> AsyncIterator[Job]:
        """Walk stored jobs page by page: ready in dequeue order, delayed by due time, in
        flight by deadline, dead in the order they died; states in the order given
        (``reverse`` walks it all backwards). ``start_id`` starts at that job (nothing if
        it is in none of the states), ``end_id`` ends after it. A job that changes state
        mid-walk may be seen twice or not at all, never invented.

        Raises:
            InvalidJobError: a bad page size (raised here, before iterating).
            BackendError: the store failed (while iterating).
        """
        opts = options or IterOptions()
        opts.checked_count()
        return read.iter_jobs(self._ctx, opts)

    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job | None]:
        """Look jobs up by id in any state (see :mod:`.read` for what each reads as).

        Returns:
            One entry per id, in the given order: the job with ``state`` set (a held
            job: the state it was held from), or None when it is not stored.

        Raises:
            InvalidJobError: ``job_ids`` is not a sequence of str.
            SerializationError: a stored entry is garbage (the job ids are named).
            BackendError: the store failed.
        """
        self._check_open("get_jobs")
        return await read.get_jobs(self._ctx, checked_job_ids(job_ids))

    def capabilities(self) -> BackendCapabilities:
        """Probed at open: persistence from the server, clustering from the connection."""
        return self._base_capabilities(
            atomic_ack=True,
            idempotent_enqueue=True,
            time_to_live=True,
            prioritization=True,
            batch_operations=True,
        )

    async def stats(self) -> BackendStats:
        """Depth per state (from the server), rates, error ratio and latencies (this
        instance's operations), and the real pool's active/idle connections.

        Raises:
            BackendError: the store failed.
        """
        return await read.stats(self._ctx)

    # -- moves and maintenance (see .moves) ------------------------------------------------
    async def move(self, job: JobRef, target_queue: str) -> None:
        """Move a job by id to ``target_queue`` on this store; it arrives ready.

        One script when both queues share a slot (always on a standalone server);
        across cluster slots an idempotent move keyed by the job id: out of its
        state into ``moving`` (source), stored once with a receipt (target),
        forgotten (source). A crash at any point is finished by the maintenance loop.

        Raises:
            JobNotFoundError: unknown id, or not movable (held, moving elsewhere).
            LeaseLostError: the given Job's lease is not the current one.
            DuplicateJobError: the target stores another job with that id (nothing moved).
            InvalidJobError: a bad job argument or target queue name.
            BackendError: the store failed.
        """
        await moves.move(self._ctx, job, target_queue)

    async def recover_moves(self, older_than: float = 1.0) -> int:
        """Finish cross-slot moves interrupted by a crash (idempotent; the maintenance loop runs
        it): those that began at least ``older_than`` seconds ago by the server's clock.

        Raises:
            BackendError: the store failed.
        """
        return await moves.recover_moves(self._ctx, older_than)

    async def reclaim(self) -> int:
        """Sweep now: reclaim expired leases, promote due jobs, drop expired ones (bounded
        batches, repeated while a batch was full). Returns how many leases were reclaimed.

        Raises:
            BackendError: the store failed.
        """
        return await moves.reclaim(self._ctx)

    async def drop_dead(self) -> int:
        """Dead-letter retention now: drop dead jobs past ``dead_retention`` or beyond
        ``dead_max``, oldest first (bounded batches). Returns how many (also counted in
        ``stats().total_dead_dropped``).

        Raises:
            BackendError: the store failed.
        """
        return await moves.drop_dead(self._ctx)

    async def run_maintenance(self) -> None:
        """Every ``reclaim_interval``: :meth:`reclaim`, :meth:`drop_dead` and finish interrupted
        cross-slot moves."""
        await moves.run_maintenance(self._ctx)

    # -- migration SPI (see .migration) ----------------------------------------------------
    async def migration_hold(self, migration_id: str, state: JobState, count: int) -> list[Job]:
        """Take up to ``count`` jobs in ``state`` (READY, DELAYED or DEAD) into the holding area
        (garbage is held too, marked ``last_error`` ``"corrupt: <reason>"``).

        Raises:
            InvalidJobError: another state, a bad count or migration id.
            BackendError: the store failed.
        """
        return await migration.hold(self._ctx, migration_id, state, count)

    async def migration_held(self, migration_id: str, count: int = 1000) -> list[Job]:
        """Up to ``count`` held jobs, in the order they were held.

        Raises:
            InvalidJobError, BackendError.
        """
        return await migration.held(self._ctx, migration_id, count)

    async def migration_release(self, migration_id: str, job_ids: Sequence[str]) -> int:
        """Forget held jobs (they are safe in the target). Returns how many.

        Raises:
            InvalidJobError, BackendError.
        """
        return await migration.release(self._ctx, migration_id, job_ids)

    async def migration_restore(self, migration_id: str) -> int:
        """Put every held job back where it came from, at its old position. Returns how many.

        Raises:
            InvalidJobError, BackendError.
        """
        return await migration.restore(self._ctx, migration_id)

    async def migration_give_back(self, jobs: Sequence[Job]) -> None:
        """Hand back leased jobs nobody processed: to the head of their ready lists, the
        attempt not counted (a job no longer leased under its token is left alone). A
        failure is logged; such a job comes back when its lease expires."""
        await batches.give_back(self._ctx, jobs=jobs)

    async def import_jobs(self, jobs: Sequence[Job]) -> list[bool]:
        """Store jobs in their carried state (READY, DELAYED, DEAD), idempotently by id.

        Raises:
            InvalidJobError, BackendError.
        """
        return await migration.import_jobs(self._ctx, jobs)

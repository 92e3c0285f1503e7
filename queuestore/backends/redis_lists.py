"""The ``redis-lists`` backend: the default, on standalone Redis and Redis Cluster.

Every transition is one Lua script (``lua/lists/*.lua``) that gets every key it
touches in KEYS; all keys of a queue share the hash tag ``{queue}``, so the same
scripts run on a cluster. The job body is stored once, in one per-queue hash;
the state sets hold ids only. Key layout of queue ``Q`` (``key_prefix`` ``queue:``):

===========================  =====  ==================================================
key                          type   content
===========================  =====  ==================================================
``queue:{Q}:jobs``           hash   id -> encoded job body (msgpack/JSON, maybe zlib)
``queue:{Q}:meta``           hash   id -> mutable state (msgpack: state, lease token and
                                    deadline, attempt, retry count, errors, sequence)
``queue:{Q}:ready``          zset   ready ids; score ``(9 - priority) * 1e13 + seq``:
                                    higher priority first, FIFO within a priority
``queue:{Q}:delayed``        zset   delayed ids by due time (epoch s)
``queue:{Q}:inflight``       zset   leased ids by lease deadline (epoch s)
``queue:{Q}:dead``           zset   dead-lettered ids in the order they died
``queue:{Q}:ttl``            zset   waiting ids by ``expires_at``
``queue:{Q}:seq``            str    sequence counter
``queue:{Q}:wake``           list   wake-up tokens for blocked consumers (<= 64)
``queue:{Q}:idem``           zset   idempotency keys by end of their window
``queue:{Q}:moving``         zset   ids on their way to another slot (cross-slot move)
``queue:{Q}:inbox``          zset   receipts of cross-slot moves into Q (one window)
``queue:{Q}:held:<mid>``     zset   ids held by migration ``<mid>``, in hold order
===========================  =====  ==================================================

The state sets are sorted sets rather than plain lists ("or equivalent" in the
issue): a job leaves the middle of a state by id (move, TTL, migration) in
O(log N) instead of an O(N) ``LREM``, and ``iter`` resumes from a stable cursor.
Scripts write the new place of a job (meta, then its set) before removing the
old entry, so an error half-way leaves a duplicate entry that readers and the
sweep drop (the meta is the truth), never a lost job.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import anyio
import anyio.lowlevel
import msgspec

from queuestore._args import JobRef, job_ref
from queuestore._durations import to_seconds
from queuestore._job import Job, JobState, validate_job
from queuestore._models import BackendConfig, DequeueOptions
from queuestore.abc import BackendFactory, MigrationSupport
from queuestore.backends._lists_move import ListsMoves
from queuestore.backends._lists_ops import WAKE, RedisListsOptions, meta_for
from queuestore.backends._redis.base import check_backend_options
from queuestore.backends._redis.connection import check_connection_config
from queuestore.backends._redis.errors import translating
from queuestore.backends._redis.keys import validate_queue_name
from queuestore.backends._redis.scripts import ScriptCall
from queuestore.errors import ConfigurationError, InvalidJobError, QueueStoreError, SerializationError

__all__ = ["RedisListsBackend", "RedisListsFactory", "RedisListsOptions"]


class _LeaseTokens:
    """Lease tokens: a random 64-bit prefix (per process: re-drawn in a forked child), a
    counter per dequeue call, then (added by the dequeue script) the job's number in that call:
    ``<16 hex><call, hex>.<n>``. Unique per delivery (the counter never repeats under one
    prefix, and another process draws its own prefix) and not guessable from outside, at a
    fraction of a ``uuid4`` per token, and one script argument per call instead of one per job."""

    __slots__ = ("_count", "_prefix")

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._count = itertools.count(1)

    def call_prefix(self) -> str:
        return f"{self._prefix}{next(self._count):x}."


_TOKENS = _LeaseTokens()
_INF = float("inf")
os.register_at_fork(after_in_child=_TOKENS.reseed)


class RedisListsBackend(ListsMoves, MigrationSupport):
    """A queue on Redis (standalone or cluster) with atomic Lua transitions and leases.

    Args:
        config: the generic backend config (url, cluster, queue...).
        options: the typed options (see :class:`RedisListsOptions`).
    """

    def __init__(self, config: BackendConfig, options: RedisListsOptions) -> None:
        super().__init__(config, options)
        self.lists_options = options
        self._waits: set[anyio.CancelScope] = set()

    async def _close(self) -> None:
        # wake blocked consumers first (their dequeue then raises BackendClosedError), so no
        # blocking call is retried on a client that is being closed
        for scope in list(self._waits):
            scope.cancel()
        await anyio.lowlevel.checkpoint()
        await super()._close()

    # -- enqueue -------------------------------------------------------------------------
    def _store_args(self, jobs: Sequence[Job], importing: bool) -> list[list[Any]]:
        rows: list[list[Any]] = []
        for job in jobs:
            validate_job(job)
            if not importing and job.queue and job.queue != self.queue:
                raise InvalidJobError(
                    "queue", f"job is for queue {job.queue!r}, this backend serves {self.queue!r}"
                )
            if importing and job.state not in (JobState.READY, JobState.DELAYED, JobState.DEAD):
                raise InvalidJobError(
                    "state", f"imported jobs must be ready, delayed or dead, not {job.state}"
                )
            dead = importing and job.state is JobState.DEAD
            stored = msgspec.structs.replace(job, queue=self.queue, lease_token=None, lease_deadline=None)
            key = "" if importing else (job.idempotency_key or "")
            try:  # InvalidJobError("payload") when not encodable; decoded back once, uncompressed
                body = self.codec.encode_checked(stored)
            except SerializationError as exc:  # a field of the wrong type: name it
                msg = str(exc)
                field = (
                    msg.split("at `$.", 1)[1].split("`", 1)[0].split(".", 1)[0] if "at `$." in msg else "job"
                )
                raise InvalidJobError(field, msg) from None
            rows.append([job.id, body, meta_for(job, "x" if dead else "r"), key])
        return rows

    async def _store(self, op: str, jobs: Sequence[Job], importing: bool) -> list[bool]:
        rows = self._store_args(jobs, importing)
        if not rows:
            return []
        head = ["import" if importing else "enqueue", float(self.options.idempotency_window)]
        size = self.lists_options.batch_size
        calls = [
            ScriptCall("enqueue", self.block, head + [a for row in rows[i : i + size] for a in row])
            for i in range(0, len(rows), size)
        ]
        if len(calls) == 1:
            replies = [await self._script(op, "enqueue", self.block, calls[0].args)]
        else:
            replies = await self._scripts(op, calls)
        out = [bool(int(r)) for reply in replies for r in reply]
        self.metrics.record("enqueue", sum(out))
        return out

    async def enqueue(self, job: Job) -> bool:
        """Store a job as ready (or delayed); False if its id or idempotency key is stored.

        Raises:
            InvalidJobError: the job is invalid (the field is named).
            BackendError: the store failed (ConnectionFailedError, OperationTimeoutError...).
        """
        if self.options.coalesce:
            row = self._store_args([job], False)[0]  # this call's own validation error, if any
            return bool(await self._coalesce("enqueue", self._enqueue_flush, row))
        return (await self._store("enqueue", [job], False))[0]

    async def _enqueue_flush(self, rows: list[list[Any]]) -> list[Any]:
        """Coalesced ``enqueue`` calls: their validated rows, ``batch_size`` per script."""
        head: list[Any] = ["enqueue", float(self.options.idempotency_window)]
        size = self.lists_options.batch_size
        calls = [
            ScriptCall("enqueue", self.block, head + [a for row in rows[i : i + size] for a in row])
            for i in range(0, len(rows), size)
        ]
        if len(calls) == 1:
            replies = [await self._script("enqueue", "enqueue", self.block, calls[0].args)]
        else:
            replies = await self._scripts("enqueue", calls)
        out = [bool(int(r)) for reply in replies for r in reply]
        self.metrics.record("enqueue", sum(out))
        return out

    async def enqueue_many(self, jobs: Sequence[Job]) -> list[bool]:
        """Enqueue jobs: ``batch_size`` per script, the scripts pipelined (one round trip
        for up to ``batch_size * pipeline_size`` jobs).

        Raises:
            InvalidJobError, BackendError.
        """
        return await self._store("enqueue_many", list(jobs), False)

    async def import_jobs(self, jobs: Sequence[Job]) -> list[bool]:
        """Store jobs in their carried state (READY, DELAYED, DEAD), idempotently by id.

        Raises:
            InvalidJobError, BackendError.
        """
        return await self._store("import_jobs", list(jobs), True)

    # -- dequeue -------------------------------------------------------------------------
    async def _lease(self, op: str, count: int, visibility: float) -> tuple[list[Job], float | None, int]:
        """One non-blocking sweep + lease script: (jobs, seconds to the next due time, buried)."""
        opts = self.lists_options
        args = [count, visibility, opts.reclaim_batch, opts.bury_limit, _TOKENS.call_prefix()]
        reply = await self._script(op, "dequeue", self.block, args)
        _, dead, _, expired, buried = (int(x) for x in reply[:5])
        next_due = float(reply[5]) if reply[5] else None
        jobs: list[Job] = []
        for i in range(6, len(reply), 3):
            job, bad = self.read_job(reply[i].decode(), reply[i + 1], reply[i + 2])
            if bad is not None:  # garbage never reaches a consumer: dead-letter it with the reason
                await self._script(op, "nack", self.block, [job.id, job.lease_token or "", 0, 0, 1, bad])
                buried += 1
                continue
            jobs.append(job)
        self.metrics.record("dead", dead + buried)
        self.metrics.record("expired", expired)
        self.metrics.record("dequeue", len(jobs))
        return jobs, next_due, buried

    async def _take(self, op: str, count: int, options: DequeueOptions | None) -> list[Job]:
        if options is None:  # the defaults, without building and converting them per call
            timeout, visibility = 0.0, float(self.options.visibility_timeout)
        else:
            t = options.timeout
            timeout = t if type(t) is float and 0.0 <= t < _INF else options.timeout_seconds()
            visibility = options.lease_seconds(float(self.options.visibility_timeout))
        deadline = time.monotonic() + timeout
        coalesced = count == 1 and self.options.coalesce
        jobs: list[Job]
        while True:
            if coalesced:
                key = ("dequeue", visibility)
                jobs, next_due, buried = await self._coalesce(key, self._lease_flush, visibility)
            else:
                jobs, next_due, buried = await self._lease(op, count, visibility)
            if jobs:
                return jobs
            if buried:
                continue  # garbage was cleared out of the way: look again at once
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            wait = min(float(self.options.block_timeout), remaining)
            if next_due is not None:
                wait = min(wait, next_due + 0.005)
            # block outside Lua, finite, on the wake-up list; then run the lease script again
            with anyio.CancelScope() as scope, translating(self.name, op):
                self._waits.add(scope)
                try:
                    await self.conn.blocking_client.blpop([self.block[WAKE]], timeout=max(wait, 0.01))
                finally:
                    self._waits.discard(scope)

    async def _lease_flush(self, items: list[Any]) -> list[Any]:
        """Coalesced ``dequeue`` calls (one lease length): one lease script for all of them,
        a job each while there are jobs; the others get none (and wait as they would)."""
        jobs: list[Job] = []
        next_due: float | None = None
        buried = 0
        size = self.lists_options.batch_size
        for start in range(0, len(items), size):  # batch_size per script, as ``enqueue_many``
            want = min(size, len(items) - start)
            got, next_due, b = await self._lease("dequeue", want, items[0])  # items: the lease length
            jobs += got
            buried += b
            if len(got) < want and not b:
                break  # the queue ran dry: the rest get none
        return [([jobs[i]] if i < len(jobs) else [], next_due, buried) for i in range(len(items))]

    async def dequeue(self, options: DequeueOptions | None = None) -> Job | None:
        """Lease the next ready job, waiting up to ``options.timeout`` (0: don't wait).

        Raises:
            InvalidJobError: bad options (negative timeout...).
            BackendError: the store failed.
        """
        jobs = await self._take("dequeue", 1, options)
        return jobs[0] if jobs else None

    async def dequeue_many(self, options: DequeueOptions | None = None) -> list[Job]:
        """Lease up to ``options.count`` jobs in one script, waiting up to timeout for the first.

        Raises:
            InvalidJobError, BackendError.
        """
        return await self._take("dequeue_many", (options or DequeueOptions()).checked_count(), options)

    # -- ack / nack / extend -------------------------------------------------------------
    async def ack(self, job: JobRef) -> None:
        """Acknowledge a leased job: it is gone.

        Raises:
            JobNotFoundError: the job is not in flight.
            LeaseLostError: the given Job's lease is no longer the current one.
            BackendError: the store failed.
        """
        job_id, token = job_ref(job)
        if self.options.coalesce:
            await self._coalesce("ack", self._ack_flush, (job_id, token or ""))
            return
        code = (await self._script("ack", "ack", self.block, [job_id, token or ""]))[0]
        self.check_code(int(code), job_id)
        self.metrics.record("ack")

    async def _ack_flush(self, refs: list[tuple[str, str]]) -> list[Any]:
        """Coalesced ``ack`` calls: ``batch_size`` per script; each gets None or its own error."""
        args = [a for ref in refs for a in ref]
        size = 2 * self.lists_options.batch_size
        if len(args) <= size:
            replies = [await self._script("ack", "ack", self.block, args)]
        else:
            calls = [ScriptCall("ack", self.block, args[i : i + size]) for i in range(0, len(args), size)]
            replies = await self._scripts("ack", calls)
        out: list[Any] = []
        for (job_id, _), code in zip(refs, [c for reply in replies for c in reply], strict=True):
            try:
                self.check_code(int(code), job_id)
            except QueueStoreError as exc:
                out.append(exc)
            else:
                out.append(None)
        self.metrics.record("ack", sum(1 for r in out if r is None))
        return out

    async def ack_many(self, jobs: Sequence[JobRef]) -> list[bool]:
        """Ack several jobs, ``batch_size`` per script, pipelined; False per stale or unknown job.

        Raises:
            InvalidJobError, BackendError.
        """
        args: list[str] = []
        add = args.extend
        for j in jobs:
            job_id, token = job_ref(j)
            add((job_id, token or ""))
        if not args:
            return []
        size = 2 * self.lists_options.batch_size
        calls = [ScriptCall("ack", self.block, args[i : i + size]) for i in range(0, len(args), size)]
        out = [int(c) == 1 for reply in await self._scripts("ack_many", calls) for c in reply]
        self.metrics.record("ack", sum(out))
        return out

    async def nack(
        self, job: JobRef, requeue: bool = True, *, delay: float | timedelta = 0.0, error: str | None = None
    ) -> None:
        """Give a leased job back: ready (or delayed) with retry_count + 1, or dead-lettered
        (``requeue=False``, or past max_retries) with ``error`` as the reason.

        Raises:
            JobNotFoundError, LeaseLostError, InvalidJobError, BackendError.
        """
        job_id, token = job_ref(job)
        try:
            secs = to_seconds(delay, "delay")
        except ConfigurationError as exc:
            raise InvalidJobError("delay", exc.message) from None
        args = [job_id, token or "", int(bool(requeue)), secs, int(error is not None), error or ""]
        code, where = await self._script("nack", "nack", self.block, args)
        self.check_code(int(code), job_id)
        self.metrics.record("nack")
        if where == b"x":
            self.metrics.record("dead")

    async def extend_lease(self, job: JobRef, seconds: float | timedelta) -> float:
        """Push a lease's deadline to ``seconds`` from now (server time); return it.

        Raises:
            JobNotFoundError, LeaseLostError, InvalidJobError, BackendError.
        """
        job_id, token = job_ref(job)
        try:
            secs = to_seconds(seconds, "seconds", allow_zero=False)
        except ConfigurationError as exc:
            raise InvalidJobError("seconds", exc.message) from None
        code, deadline = await self._script("extend_lease", "extend", self.block, [job_id, token or "", secs])
        self.check_code(int(code), job_id)
        return float(deadline)


class RedisListsFactory(BackendFactory[RedisListsOptions]):
    """Creates :class:`RedisListsBackend` instances (type ``redis-lists``)."""

    options_type = RedisListsOptions

    def check(self, config: BackendConfig, options: RedisListsOptions) -> None:
        """Range checks of the options, the URL / cluster settings and the queue name.

        Raises:
            ConfigurationError: naming the field.
        """
        check_backend_options(options)
        check_connection_config(config, options)
        validate_queue_name(config.queue_name(), "queue")
        if not 1 <= options.batch_size <= 10_000:
            raise ConfigurationError("options.batch_size", "must be in 1..10000")
        if options.bury_limit < 1:
            raise ConfigurationError("options.bury_limit", "must be >= 1")
        if options.reclaim_batch > 5000:  # one script's sweep is bounded by it (and Lua's unpack limit)
            raise ConfigurationError("options.reclaim_batch", "must be <= 5000 for redis-lists")

    async def create(self, config: BackendConfig) -> RedisListsBackend:
        """Make a backend and open it (connect, probe, load scripts).

        Raises:
            ConfigurationError: the config is invalid.
            ConnectionFailedError: the server is unreachable.
        """
        backend = RedisListsBackend(config, self.parse(config))
        await backend.open()
        return backend

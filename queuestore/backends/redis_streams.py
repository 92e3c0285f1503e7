"""The ``redis-streams`` backend: consumer groups, pending-list leases, replay.

A queue is one stream read by one (or several, fan-out) consumer groups. The
lease *is* the pending list: ``dequeue`` reads with XREADGROUP, a lease lasts
``claim_min_idle`` seconds of idleness (``visibility_timeout`` is its alias;
setting both to different values is a ConfigurationError), and expired leases
of any consumer of the group are reclaimed with XAUTOCLAIM by the next
``dequeue`` of that group and handed to its caller. The delivery count drives
``attempt`` / ``retry_count`` and dead-lettering past ``max_retries``.

Key layout (``P`` = ``key_prefix``, default ``queue:``; one hash tag per queue):

=============================  ========  ==============================================
key                            type      holds
=============================  ========  ==============================================
``P{q}:stream``                stream    ready and in-flight jobs (fields j, b, r, m, a,
                                         x, e, o: id, body, retries, max, attempts,
                                         expiry ms, last error, origin); the suffix is
                                         ``stream_name`` when set (it stays under ``{q}``)
``P{q}:idx``                   hash      job id -> entry id | ``D`` delayed | ``X<id>``
                                         dead | ``H<id>`` held | ``M`` moving
``P{q}:delayed``               zset      delayed job ids by due time (ms)
``P{q}:parked``                hash      job id -> body of a delayed / moving / held job
``P{q}:parked:meta``           hash      job id -> its counters (JSON; held / moving: also
                                         the state it came from, ``s``, and ``due``)
``P{q}:ttl``                   zset      waiting job ids by expiry (ms)
``P{q}:dead``                  stream    dead letters (+ why, at, origin)
``P{q}:counters``              hash      enqueued, acked, nacked, dead, expired, lost
``P{q}:idem``                  zset      idempotency key -> end of its window (ms)
``P{q}:held:<migration id>``   stream    a migration's holding area
=============================  ========  ==============================================

Every key a script touches is passed in KEYS. Ack is XACK + XDEL in one script
(``retention: delete``, the default) once no other group still needs the entry;
``retention: retain`` keeps acked entries for replay and trims them (maintenance)
with MINID at or below the oldest entry any group still needs, down to
``max_length`` entries. MAXLEN is never used, so no unacked entry is trimmed.
Entries deleted behind our back while pending are released and counted
(``lost`` in health details), never retried. Reads skip an entry that does not decode with a
warning naming it (``corrupt_entries`` in health details); ``dequeue`` dead-letters it.

``get_jobs`` is one read-only script call per 500 ids (pipelined); garbage makes it raise
SerializationError naming the ids. A held entry that does not decode is returned by the
migration SPI as a stand-in with ``last_error`` ``"corrupt: ..."`` (see ``_streams_migrate``).

Code: this module (options, groups, enqueue, dequeue), ``_streams_read`` (length, peek, iter,
stats, health), ``_streams_lookup`` (get_jobs), ``_streams_migrate`` (migration SPI),
``_streams_settle`` (ack, nack, extend, move), ``_streams_model`` (wire format); the scripts
are ``_redis/lua/streams``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import anyio
from redis.exceptions import ResponseError

from queuestore._job import Job, JobState, validate_job
from queuestore._models import BackendConfig, DequeueOptions
from queuestore.abc import BackendFactory, MigrationSupport
from queuestore.backends._redis.base import check_backend_options
from queuestore.backends._redis.errors import translating
from queuestore.backends._redis.keys import validate_queue_name
from queuestore.backends._streams_model import (
    _SEP,
    LeaseToken,
    RedisStreamsOptions,
    check_streams_options,
    entry_job,
    fields_map,
    job_args,
    ms,
    now_ms,
)
from queuestore.backends._streams_settle import StreamsSettleBase
from queuestore.errors import InvalidJobError, SerializationError

__all__ = ["RedisStreamsBackend", "RedisStreamsFactory", "RedisStreamsOptions"]


class RedisStreamsFactory(BackendFactory[RedisStreamsOptions]):
    """Creates :class:`RedisStreamsBackend` instances (type ``redis-streams``)."""

    options_type = RedisStreamsOptions

    def check(self, config: BackendConfig, options: RedisStreamsOptions) -> None:
        """Range checks of the common and streams options.

        Raises:
            ConfigurationError: naming the field.
        """
        check_backend_options(options)
        check_streams_options(options)
        validate_queue_name(config.queue_name())

    async def create(self, config: BackendConfig) -> RedisStreamsBackend:
        """Make and open a backend.

        Raises:
            ConfigurationError, ConnectionFailedError.
        """
        backend = RedisStreamsBackend(config, self.parse(config))
        await backend.open()
        return backend


class RedisStreamsBackend(StreamsSettleBase, MigrationSupport):
    """A queue on a Redis stream (see the module docstring for the layout)."""

    def __init__(self, config: BackendConfig, options: RedisStreamsOptions) -> None:
        super().__init__(config, options)
        self._groups: set[str] = set()

    async def _open(self) -> None:
        await super()._open()
        for group in dict.fromkeys([self.group, *self.options.groups]):
            await self._ensure_group(group)

    async def _ensure_group(self, group: str, *, force: bool = False) -> None:
        """XGROUP CREATE ... 0 MKSTREAM; an existing group (BUSYGROUP) is fine."""
        if group in self._groups and not force:
            return
        with translating(self.name, "create_group"):
            try:
                await self.conn.client.execute_command(
                    "XGROUP", "CREATE", self.skeys.stream, group, "0", "MKSTREAM"
                )
            except ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise
        self._groups.add(group)

    async def _run(self, op: str, name: str, keys: list[str], args: list[Any], group: str) -> Any:
        """Run a script; on NOGROUP (stream or group gone, e.g. FLUSHALL) recreate and retry once."""
        try:
            return await self._script(op, name, keys, args)
        except Exception as exc:
            if "NOGROUP" not in str(exc) and "no such key" not in str(exc):
                raise
        await self._ensure_group(group, force=True)
        return await self._script(op, name, keys, args)

    # -- enqueue ---------------------------------------------------------------------------------
    async def enqueue(self, job: Job) -> bool:
        """Store a job (ready, or delayed when ``available_at`` is ahead); False if already stored.

        Raises:
            InvalidJobError, BackendError.
        """
        if self.options.coalesce:
            jargs = self._enqueue_job_args(job)  # this call's own validation error, if any
            return bool(await self._coalesce("enqueue", self._enqueue_flush, jargs))
        return (await self.enqueue_many([job]))[0]

    def _enqueue_job_args(self, job: Job) -> list[Any]:
        validate_job(job)
        if job.queue and job.queue != self.queue:
            raise InvalidJobError("queue", f"job is for queue {job.queue!r}, this is {self.queue!r}")
        return job_args(self.codec, self.queue, job)

    async def _enqueue_flush(self, per_job: list[list[Any]]) -> list[Any]:
        """Coalesced ``enqueue`` calls: their validated arguments, one script call."""
        args: list[Any] = [now_ms(), ms(float(self.options.idempotency_window)), len(per_job)]
        for jargs in per_job:
            args += jargs
        res = await self._script("enqueue", "enqueue", [*self.skeys.core(), self.skeys.idem], args)
        out = [bool(r) for r in res]
        self.metrics.record("enqueue", sum(out))
        return out

    async def enqueue_many(self, jobs: Sequence[Job]) -> list[bool]:
        """Enqueue several jobs in one script call.

        Raises:
            InvalidJobError, BackendError.
        """
        for job in jobs:
            validate_job(job)
            if job.queue and job.queue != self.queue:
                raise InvalidJobError("queue", f"job is for queue {job.queue!r}, this is {self.queue!r}")
        if not jobs:
            return []
        args: list[Any] = [now_ms(), ms(float(self.options.idempotency_window)), len(jobs)]
        for job in jobs:
            args += job_args(self.codec, self.queue, job)
        res = await self._script("enqueue", "enqueue", [*self.skeys.core(), self.skeys.idem], args)
        out = [bool(r) for r in res]
        self.metrics.record("enqueue", sum(out))
        return out

    # -- dequeue ---------------------------------------------------------------------------------
    async def dequeue(self, options: DequeueOptions | None = None) -> Job | None:
        """Lease the next job (reclaimed expired leases first), waiting up to ``timeout``.

        Raises:
            InvalidJobError, BackendError.
        """
        opts = options or DequeueOptions()
        jobs = await self._dequeue(opts, 1)
        return jobs[0] if jobs else None

    async def dequeue_many(self, options: DequeueOptions | None = None) -> list[Job]:
        """Lease up to ``count`` jobs in one script call (waiting for the first).

        Raises:
            InvalidJobError, BackendError.
        """
        opts = options or DequeueOptions()
        return await self._dequeue(opts, opts.checked_count())

    async def _dequeue(self, opts: DequeueOptions, count: int) -> list[Job]:
        timeout = opts.timeout_seconds()
        lease = opts.lease_seconds(self.claim_min_idle)
        group = opts.consumer_group or self.group
        consumer = opts.consumer_id or self.consumer
        await self._ensure_group(group)
        deadline = time.monotonic() + timeout
        coalesced = count == 1 and self.options.coalesce
        jobs: list[Job]
        while True:
            if coalesced:
                key = ("dequeue", group, consumer, lease)
                jobs, entries, next_due, last_id = await self._coalesce(key, self._take_flush, key)
            else:
                jobs, entries, next_due, last_id = await self._take(group, consumer, count, lease)
            if jobs:
                self.metrics.record("dequeue", len(jobs))
                return jobs
            if entries:
                continue  # all were garbage (now dead letters): try again at once
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            wait = min(remaining, float(self.options.block_timeout))
            if next_due:
                wait = min(wait, max(0.001, float(next_due) / 1000.0 - time.time()))
            await self._wait_for_entries(last_id, wait)

    async def _take(
        self, group: str, consumer: str, count: int, lease: float
    ) -> tuple[list[Job], Any, Any, Any]:
        """One take script: (jobs, the entries it returned, next due time, last entry id)."""
        args = self._take_args("dequeue", group, consumer, count, lease)
        entries, next_due, last_id = await self._run("dequeue", "take", self.skeys.core(), args, group)
        return await self._materialize(entries, group, consumer, lease), entries, next_due, last_id

    async def _take_flush(self, keys: list[Any]) -> list[Any]:
        """Coalesced ``dequeue`` calls (one group, consumer and lease length): one take script
        for all of them, a job each while there are jobs; the others get none (and wait)."""
        _, group, consumer, lease = keys[0]
        jobs, entries, next_due, last_id = await self._take(group, consumer, len(keys), lease)
        some = bool(entries)
        return [([jobs[i]] if i < len(jobs) else [], some, next_due, last_id) for i in range(len(keys))]

    async def _wait_for_entries(self, last_id: Any, wait: float) -> None:
        """Block (outside Lua, finite) until an entry newer than ``last_id`` exists."""
        self._check_open("dequeue")
        with translating(self.name, "dequeue"):
            await self.conn.blocking_client.execute_command(
                "XREAD", "BLOCK", max(1, int(wait * 1000)), "STREAMS", self.skeys.stream, last_id
            )

    async def _materialize(self, entries: Any, group: str, consumer: str, lease: float) -> list[Job]:
        now = time.time()
        deadline = now + lease
        head = f"{group}{_SEP}{consumer}{_SEP}"  # LeaseToken(group, consumer, eid, n).encode()
        codec, queue, in_flight = self.codec, self.queue, JobState.IN_FLIGHT
        jobs: list[Job] = []
        for eid_raw, deliveries_raw, raw in entries:
            eid, deliveries = eid_raw.decode(), int(deliveries_raw)
            if type(raw) is list and all(type(v) is bytes for v in raw):  # a script reply: flat bytes
                fields = dict(zip([k.decode() for k in raw[::2]], raw[1::2], strict=True))
            else:
                fields = fields_map(raw)
            try:
                job = entry_job(codec, queue, fields, in_flight, deliveries)
            except (SerializationError, ValueError, KeyError) as exc:
                token = LeaseToken(group, consumer, eid, deliveries)
                await self._bury(fields, token, f"undecodable entry {eid}: {exc}")
                continue
            job.lease_token = f"{head}{eid}{_SEP}{deliveries}"
            job.lease_deadline, job.started_at = deadline, now
            jobs.append(job)
        return jobs

    async def _bury(self, fields: dict[str, bytes], token: LeaseToken, reason: str) -> None:
        """Dead-letter an entry that does not decode, with a placeholder job keeping its raw bytes."""
        jid = fields.get("j", b"").decode(errors="replace") or f"garbage-{token.entry_id}"
        raw = {k: v[:200].decode(errors="replace") for k, v in fields.items()}
        body = self.codec.encode(Job(id=jid, queue=self.queue, metadata=raw, dead_reason=reason))
        args = ["bury", now_ms(), int(self.retain), self.queue, "", jid, *token.args(), body, reason]
        await self._script("dequeue", "settle", self.skeys.core(), args)
        self.metrics.record("dead")

    # -- maintenance -------------------------------------------------------------------------------
    async def run_maintenance(self) -> None:
        """Every ``reclaim_interval``: promote due delayed jobs, drop expired ones, trim retained."""
        while True:
            with contextlib.suppress(Exception):  # counted in metrics by _script; keep running
                await self.sweep()
            await anyio.sleep(float(self.options.reclaim_interval))

"""The read side of ``redis-streams``: length, peek, iter, stats, health.

Reads are plain commands (they change nothing); every state change is a script.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from queuestore._job import Job, JobState
from queuestore._models import BackendCapabilities, BackendConfig, BackendStats, HealthStatus, IterOptions
from queuestore.backends._redis.base import RedisBackendBase
from queuestore.backends._redis.errors import translating
from queuestore.backends._redis.keys import QueueKeys
from queuestore.backends._redis.scripts import lua_folder
from queuestore.backends._streams_model import (
    RedisStreamsOptions,
    StreamKeys,
    default_consumer_name,
    entry_job,
    fields_map,
    id_after,
    id_tuple,
    is_entry_id,
    ms,
    now_ms,
    parked_fields,
)
from queuestore.errors import InvalidJobError, SerializationError

__all__ = ["StreamsReadBase"]

log = logging.getLogger("queuestore.backends.redis_streams")

_STATE = {b"ready": JobState.READY, b"delayed": JobState.DELAYED, b"dead": JobState.DEAD}


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class StreamsReadBase(RedisBackendBase):
    """Shared state of the streams backend plus everything that only reads or migrates."""

    lua_folder = lua_folder("queuestore.backends._redis").joinpath("streams")
    script_names = ("enqueue", "take", "settle", "migrate", "lookup")
    options: RedisStreamsOptions

    def __init__(self, config: BackendConfig, options: RedisStreamsOptions) -> None:
        super().__init__(config, options)
        self.skeys = StreamKeys(self.keys, options.stream_name)
        self.group = options.consumer_group
        self.consumer = options.consumer_name or default_consumer_name()
        self.claim_min_idle = float(options.claim_min_idle or options.visibility_timeout)
        self.retain = options.retention == "retain"
        #: entries that reads (peek, iter, migration views) skipped because they do not decode,
        #: since open (each skip counts; health reports it as ``corrupt_entries``)
        self.corrupt_entries = 0

    # -- helpers -------------------------------------------------------------------------------
    def _take_args(self, mode: str, group: str, consumer: str, count: int, lease: float) -> list[Any]:
        o = self.options
        return [
            mode, group, consumer, count, now_ms(), ms(self.claim_min_idle), o.claim_count,
            o.reclaim_batch, int(self.retain), ms(lease), self.queue, o.max_length,
        ]  # fmt: skip

    async def sweep(self) -> int:
        """Promote due delayed jobs, drop waiting jobs past their TTL, trim retained entries."""
        args = self._take_args("sweep", self.group, self.consumer, 1, self.claim_min_idle)
        res = await self._script("sweep", "take", self.skeys.core(), args)
        return int(res[0])

    async def _group_view(self, group: str) -> tuple[str, int | None, int]:
        """(last-delivered id, ready count if cheaply exact else None, pending) of ``group``.

        With one group and ``retention: delete`` every entry at or below the group's
        last-delivered id is pending, so ready = XLEN - pending. Otherwise the
        server's ``lag`` is not trusted (it over-counts after XDEL of undelivered
        entries, and KeyDB lacks it): the caller counts, paged.
        """
        with translating(self.name, "xinfo"):
            try:
                infos = await self.conn.client.execute_command("XINFO", "GROUPS", self.skeys.stream)
            except Exception as exc:
                if "no such key" in str(exc).lower():
                    return "0-0", 0, 0
                raise
            xlen = int(await self.conn.client.execute_command("XLEN", self.skeys.stream))
        for info in infos:
            d = {_s(k): v for k, v in info.items()} if isinstance(info, dict) else {}
            if _s(d.get("name", b"")) == group:
                pending = int(d.get("pending", 0))
                exact = xlen - pending if len(infos) == 1 and not self.retain else None
                return _s(d.get("last-delivered-id", b"0-0")), exact, pending
        return "0-0", None, 0

    async def _ready_count(self) -> int:
        last, ready, _ = await self._group_view(self.group)
        if ready is not None:
            return ready
        n, start = 0, id_after(last)
        while True:
            page = await self._call("length", "XRANGE", self.skeys.stream, start, "+", "COUNT", 10000)
            n += len(page)
            if len(page) < 10000:
                return n
            start = id_after(_s(page[-1][0]))

    def _job(self, fields: Any, state: JobState, where: str, deliveries: int = 0) -> Job | None:
        """Decode a stored job; garbage is skipped, but never silently: it is logged and counted.

        ``where`` names the entry (key and entry id, or delayed job id) for the warning.
        """
        try:
            return entry_job(self.codec, self.queue, fields_map(fields), state, deliveries)
        except (SerializationError, ValueError, KeyError) as exc:
            self.corrupt_entries += 1
            log.warning(
                "redis-streams %s: skipping %s (%s): does not decode: %s", self.name, where, state, exc
            )
            return None

    # -- ABC reads ---------------------------------------------------------------------------
    async def length(self) -> int:
        """Ready (entries not yet delivered to the configured group) + delayed jobs."""
        await self.sweep()
        return await self._ready_count() + int(await self._call("length", "ZCARD", self.skeys.delayed))

    async def peek(self, offset: int = 0) -> Job | None:
        """The ready entry at ``offset`` after the group's last-delivered id (reclaimable
        expired leases are served before these and are not counted here)."""
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidJobError("offset", f"must be an int >= 0, got {offset!r}")
        await self.sweep()
        last, _, _ = await self._group_view(self.group)
        page = await self._call("peek", "XRANGE", self.skeys.stream, id_after(last), "+", "COUNT", offset + 1)
        if len(page) <= offset:
            return None
        eid, fields = page[offset]
        return self._job(fields, JobState.READY, f"entry {_s(eid)} of {self.skeys.stream}")

    def iter(self, options: IterOptions | None = None) -> AsyncIterator[Job]:
        """Walk jobs page by page: per state, in dequeue (stream) order; see ``redis_streams``."""
        opts = options or IterOptions()
        opts.checked_count()
        return self._iter(opts)

    async def _iter(self, opts: IterOptions) -> AsyncIterator[Job]:
        await self.sweep()
        states = opts.states[::-1] if opts.reverse else opts.states
        lo, hi = "-", "+"
        job_start = job_end = None
        if opts.start_id is not None:
            if is_entry_id(opts.start_id):
                lo = opts.start_id
            else:
                job_start = opts.start_id
        if opts.end_id is not None:
            if is_entry_id(opts.end_id):
                hi = opts.end_id
            else:
                job_end = opts.end_id
        if opts.start_time is not None:  # an entry is never older than its job (5 s for clock skew)
            bound = str(max(0, ms(opts.start_time) - 5000))
            lo = max(lo, bound, key=lambda v: id_tuple(v) if v != "-" else (-1, 0))
        started = job_start is None
        for state in states:
            async for job in self._walk(state, opts, lo, hi):
                if not started:
                    if job.id != job_start:
                        continue
                    started = True
                if not self._in_window(job, opts):
                    continue
                yield job
                if job_end is not None and job.id == job_end:
                    return

    @staticmethod
    def _in_window(job: Job, opts: IterOptions) -> bool:
        return (opts.start_time is None or job.created_at >= opts.start_time) and (
            opts.end_time is None or job.created_at < opts.end_time
        )

    async def _walk(self, state: JobState, opts: IterOptions, lo: str, hi: str) -> AsyncIterator[Job]:
        count, rev, k = opts.checked_count(), opts.reverse, self.skeys
        if state == JobState.DELAYED:
            rank = 0
            while True:
                with self.metrics.timed(), translating(self.name, "iter"):
                    page: list[Any] = await self.conn.client.zrange(
                        k.delayed, rank, rank + count - 1, desc=rev, withscores=True
                    )
                if not page:
                    return
                rank += len(page)
                ids = [_s(m) for m, _ in page]
                bodies = await self._call("iter", "HMGET", k.parked, *ids)
                metas = await self._call("iter", "HMGET", k.meta, *ids)
                for (jid, score), body, meta in zip(page, bodies, metas, strict=True):
                    if not body:
                        continue  # promoted or moved since the page was read
                    where = f"delayed job {_s(jid)!r} in {k.parked}"
                    job = self._job(parked_fields(jid, body, meta), JobState.DELAYED, where)
                    if job is not None:
                        job.available_at = float(score) / 1000.0
                        yield job
        if state == JobState.IN_FLIGHT:
            async for job in self._walk_pending(count, rev, lo, hi):
                yield job
            return
        key = k.dead if state == JobState.DEAD else k.stream
        last = "0-0"
        if state == JobState.READY:
            last, _, _ = await self._group_view(self.group)
            if not self.retain:
                lo = max(lo, id_after(last), key=lambda v: id_tuple(v) if v != "-" else (-1, 0))
        a, b = (hi, lo) if rev else (lo, hi)
        while True:
            page = await self._call("iter", "XREVRANGE" if rev else "XRANGE", key, a, b, "COUNT", count)
            if not page:
                return
            pending: set[str] = set()
            if state == JobState.READY and self.retain:
                first, end = _s(page[-1][0] if rev else page[0][0]), _s(page[0][0] if rev else page[-1][0])
                rows = await self._pending(first, end, len(page))
                pending = {_s(r["message_id"]) for r in rows}
            for eid, fields in page:
                if _s(eid) in pending:
                    continue
                job = self._job(fields, state, f"entry {_s(eid)} of {key}")
                if job is not None:
                    yield job
            a = "(" + _s(page[-1][0])
            if len(page) < count:
                return

    async def _pending(self, lo: str, hi: str, count: int) -> list[dict[str, Any]]:
        with self.metrics.timed(), translating(self.name, "xpending"):
            rows: list[dict[str, Any]] = await self.conn.client.xpending_range(
                self.skeys.stream, self.group, lo, hi, count
            )
        return rows

    async def _walk_pending(self, count: int, rev: bool, lo: str, hi: str) -> AsyncIterator[Job]:
        start = lo
        while True:
            rows = await self._pending(start, hi, count)
            if not rows:
                return
            ids = [_s(r["message_id"]) for r in rows]
            pipe = self.conn.client.pipeline(transaction=False)
            for eid in ids:
                pipe.execute_command("XRANGE", self.skeys.stream, eid, eid)
                pipe.execute_command("ZSCORE", self.skeys.leases, f"{self.group}\x1f{eid}")
            with translating(self.name, "iter"):
                replies = await pipe.execute()
            jobs = []
            now = time.time()
            for row, ent, deadline in zip(rows, replies[::2], replies[1::2], strict=True):
                if not ent:
                    continue
                where = f"entry {_s(row['message_id'])} of {self.skeys.stream}"
                job = self._job(ent[0][1], JobState.IN_FLIGHT, where, int(row["times_delivered"]))
                if job is not None:
                    idle = int(row["time_since_delivered"]) / 1000.0
                    job.started_at = now - idle
                    job.lease_deadline = float(deadline) / 1000.0 if deadline is not None else None
                    jobs.append(job)
            for job in reversed(jobs) if rev else jobs:
                yield job
            if len(rows) < count:
                return
            start = "(" + ids[-1]

    # -- surfaces -----------------------------------------------------------------------------
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
        await self.sweep()
        k = self.skeys
        ready = await self._ready_count()
        pipe = self.conn.client.pipeline(transaction=False)
        pipe.execute_command("ZCARD", k.delayed)
        pipe.execute_command("XLEN", k.dead)
        pipe.execute_command("XLEN", k.stream)
        pipe.execute_command("HGETALL", k.counters)
        pipe.xpending_range(k.stream, self.group, "-", "+", 1)
        with translating(self.name, "stats"):
            delayed, dead, xlen, counters, oldest = await pipe.execute(raise_on_error=False)
        _, _, pending = await self._group_view(self.group)
        c = {_s(a): int(b) for a, b in (counters.items() if isinstance(counters, dict) else [])}
        m = self.metrics
        age = None
        if isinstance(oldest, list) and oldest:
            age = int(oldest[0]["time_since_delivered"]) / 1000.0
        return BackendStats(
            backend=self.name, queue=self.queue, queue_depth=ready, delayed=int(delayed), in_flight=pending,
            dead=int(dead) if isinstance(dead, int) else 0, total_enqueued=c.get("enqueued", 0),
            total_dequeued=m.totals.get("dequeue", 0), total_acked=c.get("acked", 0),
            total_nacked=c.get("nacked", 0), total_dead_lettered=c.get("dead", 0),
            total_expired=c.get("expired", 0), total_errors=m.totals.get("error", 0),
            stream_length=int(xlen) if isinstance(xlen, int) else 0, consumer_lag=ready,
            oldest_pending_age_s=age, connection_pool=self.conn.pool_stats(), **m.activity(),
        )  # fmt: skip

    async def health(self) -> HealthStatus:
        """The common checks plus consumer lag, pending count and oldest pending age in details."""
        status = await super().health()
        status.details["corrupt_entries"] = str(self.corrupt_entries)
        if status.latency_ms is not None:
            try:
                st = await self.stats()
                status.details.update(
                    consumer_lag=str(st.consumer_lag), pending=str(st.in_flight),
                    oldest_pending_age_s=str(st.oldest_pending_age_s), lost_entries=str(await self._lost()),
                )  # fmt: skip
            except Exception as exc:  # health never raises
                status.details["stats_error"] = str(exc)
        return status

    async def _lost(self) -> int:
        return int(await self._call("health", "HGET", self.skeys.counters, "lost") or 0)

    def _target_keys(self, queue: str) -> StreamKeys:
        return StreamKeys(QueueKeys(self.options.key_prefix, queue), self.options.stream_name)

"""``iter`` of ``redis-streams``: jobs page by page, per state, in dequeue (stream) order.

Ready and dead jobs are stream entries (XRANGE pages; with ``retention: retain`` the ready
walk skips entries still pending for the group), delayed jobs are the ``delayed`` zset in due
order with their parked bodies, and in-flight jobs are the group's pending list with each
entry and its lease record. Entry-id bounds (``start_id`` / ``end_id`` that look like
``1712345678901-0``) bound the stream walks; other ids are job ids to start or stop at.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from queuestore._args import text
from queuestore._job import Job, JobState
from queuestore._models import IterOptions
from queuestore.backends._redis.errors import translating
from queuestore.backends.redis_streams.layout import (
    id_after,
    id_tuple,
    is_entry_id,
    lease_member,
    ms,
    parked_fields,
)
from queuestore.backends.redis_streams.read import group_view
from queuestore.backends.redis_streams.store import StreamsStore

__all__ = ["iter_jobs"]

#: an entry is never older than its job; this much slack covers clock skew (ms)
_CLOCK_SKEW_MS = 5000


def _later(a: str, b: str) -> str:
    """The later of two XRANGE bounds (``-`` is the lowest)."""
    return max(a, b, key=lambda v: id_tuple(v) if v != "-" else (-1, 0))


async def iter_jobs(store: StreamsStore, opts: IterOptions) -> AsyncIterator[Job]:
    """Walk jobs per state of ``opts.states`` (reversed when ``opts.reverse``).

    Raises:
        BackendError: the store failed.
    """
    await store.sweep()
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
    if opts.start_time is not None:
        lo = _later(lo, str(max(0, ms(opts.start_time) - _CLOCK_SKEW_MS)))
    started = job_start is None
    for state in states:
        async for job in _walk(store, state, opts, lo, hi):
            if not started:
                if job.id != job_start:
                    continue
                started = True
            if not _in_window(job, opts):
                continue
            yield job
            if job_end is not None and job.id == job_end:
                return


def _in_window(job: Job, opts: IterOptions) -> bool:
    return (opts.start_time is None or job.created_at >= opts.start_time) and (
        opts.end_time is None or job.created_at < opts.end_time
    )


async def _walk(
    store: StreamsStore, state: JobState, opts: IterOptions, lo: str, hi: str
) -> AsyncIterator[Job]:
    count, rev = opts.checked_count(), opts.reverse
    if state == JobState.DELAYED:
        async for delayed in _walk_delayed(store, count, rev):
            yield delayed
        return
    if state == JobState.IN_FLIGHT:
        async for leased in _walk_pending(store, count, rev, lo, hi):
            yield leased
        return
    key = store.keys.dead if state == JobState.DEAD else store.keys.stream
    if state == JobState.READY:
        last, _, _ = await group_view(store, store.group)
        if not store.retain:
            lo = _later(lo, id_after(last))
    a, b = (hi, lo) if rev else (lo, hi)
    while True:
        page = await store.call("iter", "XREVRANGE" if rev else "XRANGE", key, a, b, "COUNT", count)
        if not page:
            return
        pending: set[str] = set()
        if state == JobState.READY and store.retain:
            first, end = text(page[-1][0] if rev else page[0][0]), text(page[0][0] if rev else page[-1][0])
            rows = await _pending(store, first, end, len(page))
            pending = {text(r["message_id"]) for r in rows}
        for eid, fields in page:
            if text(eid) in pending:
                continue
            job = store.decoded(fields, state, f"entry {text(eid)} of {key}")
            if job is not None:
                yield job
        a = "(" + text(page[-1][0])
        if len(page) < count:
            return


async def _walk_delayed(store: StreamsStore, count: int, rev: bool) -> AsyncIterator[Job]:
    k, rank = store.keys, 0
    while True:
        with store.metrics.timed(), translating(store.name, "iter"):
            page: list[Any] = await store.conn.client.zrange(
                k.delayed, rank, rank + count - 1, desc=rev, withscores=True
            )
        if not page:
            return
        rank += len(page)
        ids = [m for m, _ in page]  # as stored: one that is not UTF-8 is read, then skipped as garbage
        bodies = await store.call("iter", "HMGET", k.parked, *ids)
        metas = await store.call("iter", "HMGET", k.meta, *ids)
        for (jid, score), body, meta in zip(page, bodies, metas, strict=True):
            if not body:
                continue  # promoted or moved since the page was read
            where = f"delayed job {_shown(jid)!r} in {k.parked}"
            job = store.decoded(parked_fields(jid, body, meta), JobState.DELAYED, where)
            if job is not None:
                job.available_at = float(score) / 1000.0
                yield job


def _shown(raw: Any) -> str:
    """An id read from the store, for a message (bytes that are not UTF-8 escaped)."""
    return raw.decode(errors="backslashreplace") if isinstance(raw, bytes) else str(raw)


async def _pending(store: StreamsStore, lo: str, hi: str, count: int) -> list[dict[str, Any]]:
    with store.metrics.timed(), translating(store.name, "xpending"):
        rows: list[dict[str, Any]] = await store.conn.client.xpending_range(
            store.keys.stream, store.group, lo, hi, count
        )
    return rows


async def _walk_pending(store: StreamsStore, count: int, rev: bool, lo: str, hi: str) -> AsyncIterator[Job]:
    start = lo
    while True:
        rows = await _pending(store, start, hi, count)
        if not rows:
            return
        ids = [text(r["message_id"]) for r in rows]
        pipe = store.conn.client.pipeline(transaction=False)
        for row, eid in zip(rows, ids, strict=True):
            pipe.execute_command("XRANGE", store.keys.stream, eid, eid)
            pipe.execute_command("ZSCORE", store.keys.leases, lease_member(store.group, eid))
            # an entry a transaction take read ("@..." consumer): its take's lease, unless extended
            # since (another consumer's name is no lease member: "@" alone never is one either)
            holder = text(row["consumer"])
            pipe.execute_command(
                "ZSCORE", store.keys.leases, lease_member(store.group, holder if holder[:1] == "@" else "@")
            )
        with translating(store.name, "iter"):
            replies = await pipe.execute()
        jobs = []
        now = time.time()
        for row, ent, own, taken in zip(rows, replies[::3], replies[1::3], replies[2::3], strict=True):
            deadline = own if own is not None else taken
            if not ent:
                continue
            where = f"entry {text(row['message_id'])} of {store.keys.stream}"
            job = store.decoded(ent[0][1], JobState.IN_FLIGHT, where, int(row["times_delivered"]))
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

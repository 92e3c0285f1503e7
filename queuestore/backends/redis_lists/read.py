"""Reads of the redis-lists backend: depths and stats, ``peek``, pages of a state set
(``iter``; ``migration_held`` uses them too) and lookups by id (``get_jobs``).

``get_jobs`` runs one read-only script (``lua/lookup.lua``, flag ``no-writes``) per
``batch_size`` ids, the scripts pipelined: one round trip for up to
``batch_size * pipeline_size`` ids. It reads each id's meta (which says the
state) and body, and checks that the meta is listed in its state's set -- the
same test ``enqueue`` uses, so an id reads as stored exactly when enqueueing it
again would be a no-op (a waiting job past its TTL excepted: it reads as gone).

How a job reads:

* ready, delayed, in flight, dead: that state. Jobs are reported as they are
  stored: a delayed job that came due, or a lease past its deadline, shows as
  delayed / in flight until a sweep (a dequeue, peek or the maintenance loop)
  promotes or reclaims it -- until then the old lease holder can still ack it.
* held by a migration: the state it was held from (as the memory backend does).
* on its way to another cluster slot (a cross-slot ``move`` in progress): the
  state it left, until the move finishes and the source forgets it.
* acked, expired, never enqueued: ``None``.
* garbage (a body or meta that is missing or does not decode): a lookup does not
  hide it and cannot repair it, so :class:`~queuestore.errors.SerializationError`
  is raised naming the job ids (dequeue dead-letters such entries with the reason).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec

from queuestore._args import text
from queuestore._job import PRIORITY_MAX, PRIORITY_MIN, Job, JobState
from queuestore._models import BackendStats, IterOptions
from queuestore.backends._redis.scripts import ScriptCall
from queuestore.backends.redis_lists.context import ListsContext, chunks
from queuestore.backends.redis_lists.layout import BAD_ID, GARBAGE_META, SET_OF
from queuestore.errors import InvalidJobError, SerializationError

__all__ = ["depths", "get_jobs", "iter_jobs", "page", "peek", "stats"]

#: ``(id, score, job)`` of one sorted-set entry, as :func:`page` returns them (an id that is not
#: UTF-8 as the bytes stored, its job marked corrupt)
PageEntry = tuple[str | bytes, str, Job]


async def depths(ctx: ListsContext, op: str) -> tuple[int, int, int, int]:
    """Jobs per state: ready, delayed, in flight, dead.

    Raises:
        BackendError: the store failed.
    """
    ready, delayed, in_flight, dead = (int(n) for n in await ctx.script(op, "stats", ctx.block, []))
    return ready, delayed, in_flight, dead


async def stats(ctx: ListsContext) -> BackendStats:
    """Depth per state (from the server), rates, error ratio and latencies (this
    backend's operations), and the real pool's active/idle connections.

    Raises:
        BackendError: the store failed.
    """
    ready, delayed, in_flight, dead = await depths(ctx, "stats")
    m = ctx.metrics
    return BackendStats(
        backend=ctx.name,
        queue=ctx.layout.queue,
        queue_depth=ready,
        delayed=delayed,
        in_flight=in_flight,
        dead=dead,
        total_enqueued=m.totals["enqueue"],
        total_dequeued=m.totals["dequeue"],
        total_acked=m.totals["ack"],
        total_nacked=m.totals["nack"],
        total_dead_lettered=m.totals["dead"],
        total_expired=m.totals["expired"],
        total_dead_dropped=m.totals.get("dead_dropped", 0),
        total_errors=m.totals["error"],
        connection_pool=ctx.connection().pool_stats(),
        **m.activity(),
    )


async def peek(ctx: ListsContext, offset: int) -> Job | None:
    """The ready job at ``offset`` in dequeue order (due delayed jobs promoted first).

    Raises:
        InvalidJobError: offset < 0.
        BackendError: the store failed.
    """
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidJobError("offset", f"must be an int >= 0, got {offset!r}")
    block = ctx.block
    swept, reply = await ctx.scripts(
        "peek",
        [
            ScriptCall("dequeue", block, [0, 1, ctx.options.reclaim_batch, 0, "", 0]),
            ScriptCall("peek", block, [offset]),
        ],
    )
    ctx.metrics.record("dead", int(swept[1]) + int(swept[4]))
    ctx.metrics.record("expired", int(swept[3]))
    if not reply:
        return None
    return ctx.layout.read_stored(reply[0], reply[1], reply[2])[0]


async def page(
    ctx: ListsContext,
    set_key: str,
    mode: str,
    ref: str | bytes,
    score: str,
    count: int,
    reverse: bool,
    op: str,
) -> list[PageEntry]:
    """One page of a sorted set of this queue: ``(id, score, job)`` in set order; garbage
    (an id that is not UTF-8 included) comes back marked corrupt, never raised.

    ``mode`` is ``offset`` (``ref`` is the offset), ``from`` (start at id ``ref``) or
    ``after`` (after id ``ref`` with ``score``).

    Raises:
        BackendError: the store failed.
    """
    block = ctx.block
    reply = await ctx.script(
        op, "page", [set_key, block[0], block[1]], [mode, ref, score, count, int(reverse)]
    )
    out: list[PageEntry] = []
    for i in range(0, len(reply), 4):
        job, bad = ctx.layout.read_stored(reply[i], reply[i + 2], reply[i + 3])
        # an id that is not UTF-8 pages on by the bytes as stored
        out.append((job.id if bad is not BAD_ID else reply[i], text(reply[i + 1]), job))
    return out


async def _ready_pages(ctx: ListsContext, opts: IterOptions, count: int) -> AsyncIterator[list[Job]]:
    """Pages of the ready lists in dequeue order (higher priority first; ``reverse``: the
    other way), from ``opts.start_id`` when it is given (nothing when it is not ready)."""
    priorities = range(PRIORITY_MIN, PRIORITY_MAX + 1)
    order = list(priorities) if opts.reverse else list(reversed(priorities))
    rev = int(opts.reverse)
    if opts.start_id is not None:
        reply = await ctx.script("iter", "ready_page", ctx.block, [0, "from", opts.start_id, count, rev])
        if int(reply[0]) < 0:
            return
        order = order[order.index(int(reply[0])) :]
    else:
        reply = await ctx.script("iter", "ready_page", ctx.block, [order[0], "offset", "", count, rev])
    for n, priority in enumerate(order):
        if n > 0:
            reply = await ctx.script("iter", "ready_page", ctx.block, [priority, "offset", "", count, rev])
        while True:
            yield [job for job, _ in ctx.layout.read_triples(reply, 3)]
            if not int(reply[2]):
                break
            args = [priority, "after", text(reply[1]), count, rev]
            reply = await ctx.script("iter", "ready_page", ctx.block, args)


async def iter_jobs(ctx: ListsContext, opts: IterOptions) -> AsyncIterator[Job]:
    """Walk stored jobs page by page (see ``RedisListsBackend.iter``; ``opts`` checked).

    Raises:
        BackendError: the store failed.
    """
    count = opts.checked_count()
    states = list(opts.states)[::-1] if opts.reverse else list(opts.states)
    started = opts.start_id is None
    for state in states:
        if state is JobState.READY:
            seen = False
            async for jobs in _ready_pages(ctx, opts if not started else _no_start(opts), count):
                seen = seen or bool(jobs)
                for job in jobs:
                    if _in_time(job, opts):
                        yield job
                    if job.id == opts.end_id:
                        return
            started = started or seen
            continue
        set_key = ctx.block[SET_OF[state]]
        rev = opts.reverse != (state is JobState.IN_FLIGHT)  # in flight: scored by minus the deadline
        if started:
            entries = await page(ctx, set_key, "offset", "0", "", count, rev, "iter")
        else:
            entries = await page(ctx, set_key, "from", opts.start_id or "", "", count, rev, "iter")
            started = bool(entries)
        while entries:
            for job_id, _, job in entries:
                if job.state is state and _in_time(job, opts):
                    yield job
                if job_id == opts.end_id:
                    return
            if len(entries) < count:
                break
            last_id, last_score, _ = entries[-1]
            entries = await page(ctx, set_key, "after", last_id, last_score, count, rev, "iter")


def _no_start(opts: IterOptions) -> IterOptions:
    return msgspec.structs.replace(opts, start_id=None)


def _in_time(job: Job, opts: IterOptions) -> bool:
    if opts.start_time is not None and job.created_at < opts.start_time:
        return False
    return opts.end_time is None or job.created_at < opts.end_time


async def get_jobs(ctx: ListsContext, ids: Sequence[str]) -> list[Job | None]:
    """Look checked job ids up in any state (see the module docstring for what each reads as).

    Raises:
        SerializationError: a stored entry is garbage (the job ids are named).
        BackendError: the store failed.
    """
    if not ids:
        return []
    keys = ctx.layout.state_block
    replies = await ctx.run_batches("get_jobs", "lookup", keys, chunks(ids, ctx.options.batch_size))
    reply: list[Any] = [x for part in replies for x in part]
    out: list[Job | None] = []
    garbage: list[tuple[str, str]] = []
    for n, job_id in enumerate(ids):
        status, body, meta = int(reply[3 * n]), reply[3 * n + 1], reply[3 * n + 2]
        if status == 0:
            out.append(None)
            continue
        job, bad = ctx.layout.read_job(job_id, body, meta) if status == 1 else (None, GARBAGE_META)
        if bad is not None:
            garbage.append((job_id, bad))
        out.append(job)
    if garbage:
        ctx.metrics.record("error")
        shown = "; ".join(f"{job_id!r}: {why}" for job_id, why in garbage[:5])
        more = f" (and {len(garbage) - 5} more)" if len(garbage) > 5 else ""
        queue = ctx.layout.queue
        raise SerializationError(
            f"get_jobs: {len(garbage)} stored entries of queue {queue!r} are corrupt: {shown}{more}"
        )
    return out

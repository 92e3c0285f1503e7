"""The batch bodies of the redis-lists backend: storing jobs, leasing jobs, acking jobs.

Each runs ``batch_size`` jobs per script (the scripts pipelined where there are several)
and serves both the batch calls (``enqueue_many``, ``import_jobs``, ``dequeue_many``,
``ack_many``) and the per-job calls, alone or coalesced (the ``coalesce`` option).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import anyio

from queuestore._args import check_job_queue, misfit_field
from queuestore._job import Job, JobBody, JobState, validate_job
from queuestore._logging import get_logger, log_sweep
from queuestore.backends._redis.calls import new_call_id
from queuestore.backends.redis_lists.context import ListsContext, chunks
from queuestore.backends.redis_lists.job_record import record_for
from queuestore.backends.redis_lists.layout import MIGRATABLE, status_codes
from queuestore.errors import (
    InvalidJobError,
    OutcomeUnknownError,
    QueueMovedError,
    QueueStoreError,
    SerializationError,
)

__all__ = ["Leased", "ack_codes", "give_back", "lease", "store", "store_each", "store_rows"]

_log = get_logger("backends.redis_lists")

#: one job's arguments of the enqueue script: id, body, record, idempotency key, priority,
#: available_at ("" = none), expires_at ("" = none)
StoreRow = list[Any]


def _lease_prefix() -> str:
    """A lease call's id, which is also its jobs' lease-token prefix: a new call id and a dot;
    the dequeue script adds each job's number in the call (``<16 hex><call, hex>.<n>``). Unique
    per delivery (see :class:`~queuestore.backends._redis.calls.CallIds`), and one script
    argument per call instead of one token per job."""
    return new_call_id() + "."


def store_rows(ctx: ListsContext, jobs: Sequence[Job], importing: bool) -> list[StoreRow]:
    """The enqueue script's arguments per job, each job validated.

    Raises:
        InvalidJobError: a job is invalid, for another queue, not encodable (the field is
            named), or (importing) in a state other than READY, DELAYED or DEAD.
    """
    queue, codec = ctx.layout.queue, ctx.layout.codec
    rows: list[StoreRow] = []
    for job in jobs:
        validate_job(job)
        if not importing:
            check_job_queue(job, queue)
        elif job.state not in MIGRATABLE:
            raise InvalidJobError("state", f"imported jobs must be ready, delayed or dead, not {job.state}")
        dead = importing and job.state is JobState.DEAD
        key = "" if importing else (job.idempotency_key or "")
        try:  # InvalidJobError("payload") when not encodable; decoded back once, uncompressed
            body = codec.encode_checked(JobBody.of(job))  # the record carries the rest
        except SerializationError as exc:  # a field of the wrong type: name it
            raise InvalidJobError(misfit_field(exc), str(exc)) from None
        avail = "" if job.available_at is None else repr(float(job.available_at))
        expires = "" if job.expires_at is None else repr(float(job.expires_at))
        record = record_for(job, "x" if dead else "r")
        rows.append([job.id, body, record, key, job.priority, avail, expires])
    return rows


async def store(ctx: ListsContext, op: str, rows: Sequence[StoreRow], importing: bool) -> list[bool]:
    """Store validated rows (:func:`store_rows`): True per job stored, False per id or
    idempotency key already stored (see :func:`store_each`).

    Raises:
        QueueMovedError: a migration sealed the queue before a script stored its rows (the
            rows of the scripts that ran before it are stored: use :func:`store_each` to
            know which).
        OutcomeUnknownError: no reply came back, even to the retries with the same call id.
        BackendError: the store failed.
    """
    out = await store_each(ctx, op, rows, importing)
    for r in out:
        if isinstance(r, QueueMovedError):
            raise r
    return [bool(r) for r in out]


async def store_each(
    ctx: ListsContext, op: str, rows: Sequence[StoreRow], importing: bool
) -> list[bool | QueueMovedError]:
    """Store validated rows (:func:`store_rows`), ``batch_size`` per script: True per job
    stored, False per id or idempotency key already stored, and the QueueMovedError of a
    script that found the queue sealed by a migration for each of its rows (nothing of them
    stored; the scripts before it stored theirs).

    Each script call carries a call id: a retry of a call whose reply was lost reports what
    the first run stored (True), not "already stored".

    Raises:
        OutcomeUnknownError: no reply came back, even to the retries with the same call id.
        BackendError: the store failed.
    """
    if not rows:
        return []
    mode, window = "import" if importing else "enqueue", float(ctx.options.idempotency_window)
    batches = [
        [mode, window, ctx.call_id(), *(a for row in part for a in row)]
        for part in chunks(rows, ctx.options.batch_size)
    ]
    replies = await ctx.mutate_batch_replies(op, "enqueue", ctx.block, batches)
    out: list[bool | QueueMovedError] = []
    for reply, part in zip(replies, chunks(rows, ctx.options.batch_size), strict=True):
        if isinstance(reply, QueueMovedError):  # this script stored none of its rows
            out.extend([reply] * len(part))
        else:
            out.extend(bool(int(r)) for r in reply)
    ctx.metrics.record("enqueue", sum(r is True for r in out))
    return out


class Leased(NamedTuple):
    """What one lease step got: the jobs, seconds to the next due time (or None), and how
    many garbage entries it dead-lettered."""

    jobs: list[Job]
    next_due: float | None
    buried: int


async def _lease_once(ctx: ListsContext, op: str, count: int, visibility: float, prefix: str) -> Leased:
    """One non-blocking sweep + lease script for up to ``count`` jobs (its token prefix is its
    call id: a retry returns what the first run leased, no more)."""
    opts = ctx.options
    args = [count, visibility, opts.reclaim_batch, opts.bury_limit, ctx.call_id(prefix, held=True), 0]
    reply = await ctx.mutate(op, "dequeue", ctx.block, args)
    _, dead, _, expired, buried = (int(x) for x in reply[:5])
    next_due = float(reply[5]) if reply[5] else None
    jobs: list[Job] = []
    for n, (job, bad) in enumerate(ctx.layout.read_triples(reply, 7)):
        if bad is not None:  # garbage never reaches a consumer: dead-letter it with the reason
            bury = [reply[7 + 3 * n], job.lease_token or "", 0, 0, 1, bad, ctx.call_id()]  # the id as stored
            await ctx.mutate(op, "nack", ctx.block, bury)
            buried += 1
            continue
        jobs.append(job)
    ctx.metrics.record("dead", dead + buried)
    ctx.metrics.record("expired", expired)
    ctx.metrics.record("dequeue", len(jobs))
    log_sweep(
        _log,
        ctx.layout.queue,
        ctx.name,
        reclaimed=int(reply[0]),
        dead_lettered=dead,
        buried=buried,
        expired=expired,
    )
    return Leased(jobs, next_due, buried)


async def lease(ctx: ListsContext, op: str, count: int, visibility: float, per_script: int) -> Leased:
    """Lease up to ``count`` jobs, ``per_script`` per sweep + lease script, until the queue
    runs dry. Never waits.

    Cancelled while a lease script may have run (or while its jobs are decoded), left without
    a lease script's reply even after the retries, or failing in a later script, it hands back
    what every one of its lease scripts leased (see :func:`give_back`) before re-raising: no
    caller saw those jobs.

    Raises:
        OutcomeUnknownError: a lease script's reply was lost even to the retries (its leases,
            if any, were handed back; if the hand-back failed too, they expire).
        BackendError: the store failed (what the earlier scripts leased was handed back).
    """
    jobs: list[Job] = []
    next_due: float | None = None
    buried = 0
    calls: list[str] = []
    recorded: list[int] = []  # per call: what it leased (a call that leased nothing has no record)
    for start in range(0, count, per_script):
        want = min(per_script, count - start)
        calls.append(_lease_prefix())
        try:
            got = await _lease_once(ctx, op, want, visibility, calls[-1])
        except (anyio.get_cancelled_exc_class(), OutcomeUnknownError):
            await give_back(ctx, calls)
            raise
        except QueueStoreError:
            if len(calls) > 1:  # what the scripts before leased (and any of the failed one's)
                await give_back(ctx, calls)
            raise
        jobs += got.jobs
        recorded.append(len(got.jobs) + got.buried)
        next_due = got.next_due
        buried += got.buried
        if len(got.jobs) < want and not got.buried:
            break  # the queue ran dry
    for cid, n in zip(calls, recorded, strict=True):  # no hand-back reads their records any more
        if n:
            ctx.calls.received(cid)
    return Leased(jobs, next_due, buried)


async def give_back(ctx: ListsContext, calls: Sequence[str] = (), jobs: Sequence[Job] = ()) -> None:
    """Hand back what the lease calls ``calls`` (their call ids) leased, and the leased
    ``jobs``, that no caller got (its dequeue was cancelled or lost the reply): to the head of
    the ready lists, the attempt not counted; shielded from the caller's cancellation but given
    half the ``call_margin`` at most (a stalled server must not hold a cancelled call). A
    failure or no answer is logged (the leases then expire and the jobs are redelivered, the
    attempt counted)."""
    limit = float(ctx.options.call_margin) / 2.0
    # the last call's jobs first: each goes back to the head, so the first call's end up there
    argsets: list[list[Any]] = [[cid] for cid in reversed(calls)]
    if jobs:
        argsets.append(["", *(a for j in jobs for a in (j.id, j.lease_token or ""))])
    try:
        with anyio.move_on_after(limit, shield=True) as scope:
            for args in argsets:
                await ctx.mutate("dequeue", "giveback", ctx.block, args)
    except QueueStoreError as exc:
        _log.warning(
            "redis-lists %s: a dequeue that returned no jobs could not hand them back: %s", ctx.name, exc
        )
        return
    if scope.cancelled_caught:
        _log.warning(
            "redis-lists %s: a dequeue that returned no jobs got no answer handing them back within %gs "
            "(half the call_margin): their leases expire and they are redelivered",
            ctx.name,
            limit,
        )


async def ack_codes(ctx: ListsContext, op: str, refs: Sequence[tuple[str, str]]) -> list[int]:
    """Ack ``(job id, guard)`` pairs (:func:`~queuestore.backends.redis_lists.layout.ack_ref`);
    the script's code per job (1 acked, see
    :func:`~queuestore.backends.redis_lists.layout.check_code` for the others).

    Each script call carries a call id: a retry of a call whose reply was lost reports what
    the first run acked.

    Raises:
        OutcomeUnknownError: no reply came back, even to the retries with the same call id.
        BackendError: the store failed.
    """
    if not refs:
        return []
    keys = ctx.layout.state_block
    batches = [
        [ctx.call_id(), *(r[0] for r in part), *(r[1] for r in part)]
        for part in chunks(refs, ctx.options.batch_size)
    ]
    replies = await ctx.mutate_batches(op, "ack", keys, batches)
    return [c for reply in replies for c in status_codes(reply)]

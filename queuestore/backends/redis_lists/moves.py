"""Moves and maintenance of the redis-lists backend.

``move`` is one script when both queues share a hash slot (always on a
standalone server). Across cluster slots no script can see both queues, so the
move is three idempotent scripts keyed by the job id: ``move_out`` (source: out
of its state into the ``moving`` set, body and meta kept), ``move_in`` (target:
stored once, with a receipt in the target's ``inbox`` set that outlives the job
for the idempotency window) and ``move_done`` (source: forgotten, or put back at
its old position if the target holds another job with that id). A crash after
any step leaves the job in ``moving``; :func:`recover_moves` (run by the
maintenance loop) re-runs the steps, which is safe because each is a no-op the
second time: no loss, no duplicate.

A redrive to another queue (:func:`move_dead`) is the same move of a dead job only, which
arrives with ``retry_count`` 0.

The maintenance sweep (:func:`reclaim`) is the dequeue script with a count of 0, forced (a
dequeue sweeps only when the queue's next due time has come); dead-letter retention
(:func:`drop_dead`) runs after it.
"""

from __future__ import annotations

import contextlib

import anyio
from redis.crc import key_slot

from queuestore._args import JobRef, job_ref, text
from queuestore._logging import get_logger, log_sweep
from queuestore._retention import dead_max_limit
from queuestore.backends.redis_lists.context import ListsContext, call_id
from queuestore.backends.redis_lists.job_record import parse_record
from queuestore.backends.redis_lists.layout import check_code, key_block
from queuestore.errors import (
    ConfigurationError,
    DuplicateJobError,
    InvalidJobError,
    QueueMovedError,
    QueueStoreError,
)

__all__ = ["drop_dead", "move", "move_dead", "reclaim", "recover_moves", "run_maintenance"]

_log = get_logger("backends.redis_lists")

#: bound of the maintenance sweep's repeats while batches come back full
_MAX_SWEEPS = 1000


async def move(ctx: ListsContext, job: JobRef, target_queue: str) -> None:
    """Move a job by id to ``target_queue`` on this store; it arrives ready: one script in
    one slot, else the three-step cross-slot move (see the module docstring).

    Raises:
        JobNotFoundError, LeaseLostError, DuplicateJobError, InvalidJobError, BackendError
        (as ``RedisListsBackend.move`` documents them).
    """
    job_id, token = job_ref(job)
    layout = ctx.layout
    if target_queue == layout.queue:
        raise InvalidJobError("target_queue", f"job is already in queue {layout.queue!r}")
    try:
        target = layout.keys.for_queue(target_queue)
    except ConfigurationError as exc:
        raise InvalidJobError("target_queue", exc.message) from None
    target_block = key_block(target)
    if not ctx.connection().cluster or key_slot(layout.keys.base.encode()) == key_slot(target.base.encode()):
        args = [job_id, token or "", layout.queue, call_id()]
        code = await ctx.mutate("move", "move", ctx.block + target_block, args)
        check_code(int(code), job_id)
        return
    keys = [*ctx.block, layout.keys.key("moving")]
    out = await ctx.script("move", "move_out", keys, [job_id, token or "", target_queue, call_id()])
    if int(out[0]) == 0:
        there = parse_record(await ctx.command("move", "HGET", target_block[1], job_id))
        if there is not None and there.meta.o == layout.queue:
            return  # moved from here already: a retry is a no-op
    check_code(int(out[0]), job_id)
    await _finish_move(ctx, job_id, out[1], out[2], target_queue, text(out[4]))


async def move_dead(ctx: ListsContext, job_id: str, target_queue: str) -> bool:
    """Move a job to ``target_queue`` if it is dead here; it arrives ready with ``retry_count`` 0
    (one script in one slot, else the cross-slot move). False when it is not dead here or the
    target stores another job with its id (it stays dead here).

    Raises:
        InvalidJobError: a bad target queue name.
        BackendError: the store failed.
    """
    layout = ctx.layout
    try:
        target = layout.keys.for_queue(target_queue)
    except ConfigurationError as exc:
        raise InvalidJobError("to_queue", exc.message) from None
    target_block = key_block(target)
    if not ctx.connection().cluster or key_slot(layout.keys.base.encode()) == key_slot(target.base.encode()):
        args = [job_id, "", layout.queue, call_id(), "x"]
        return int(await ctx.mutate("redrive", "move", ctx.block + target_block, args)) == 1
    keys = [*ctx.block, layout.keys.key("moving")]
    out = await ctx.script("redrive", "move_out", keys, [job_id, "", target_queue, call_id(), "x"])
    if int(out[0]) != 1:
        return False
    try:
        await _finish_move(ctx, job_id, out[1], out[2], target_queue, text(out[4]))
    except DuplicateJobError:
        return False
    return True


async def _finish_move(
    ctx: ListsContext, job_id: str, body: bytes, meta: bytes, target_queue: str, move_token: str
) -> None:
    """Steps 2 and 3 of a cross-slot move: store in the target (its receipt keyed by the id and
    ``move_token``), then forget (or put back)."""
    layout = ctx.layout
    target = layout.keys.for_queue(target_queue)
    keys = [*key_block(target), target.key("inbox")]
    window, batch = float(ctx.options.idempotency_window), ctx.options.reclaim_batch
    args = [job_id, body, meta, layout.queue, window, batch, move_token]
    try:
        code = int(await ctx.script("move", "move_in", keys, args))
    except QueueMovedError:  # the target queue moved: the job goes back, the caller is told
        await ctx.script("move", "move_done", [*ctx.block, layout.keys.key("moving")], [job_id, "abort"])
        raise
    mode = "done" if code == 1 else "abort"
    await ctx.script("move", "move_done", [*ctx.block, layout.keys.key("moving")], [job_id, mode])
    check_code(code, job_id)


async def recover_moves(ctx: ListsContext, older_than: float = 1.0) -> int:
    """Finish cross-slot moves interrupted by a crash (idempotent): those that began at least
    ``older_than`` seconds ago by the server's clock. Returns how many.

    Raises:
        BackendError: the store failed.
    """
    moving = ctx.layout.keys.key("moving")
    keys = [*ctx.block, moving]
    # aged on the server's clock, which timed each move (not this process's)
    ids = await ctx.script("recover", "moves_due", keys, [older_than, ctx.options.reclaim_batch])
    done = 0
    for raw in ids:
        job_id = text(raw)
        out = await ctx.script("recover", "move_out", keys, [job_id, "", "", ""])
        if int(out[0]) == 1:
            with contextlib.suppress(DuplicateJobError):  # put back in the source by the abort
                await _finish_move(ctx, job_id, out[1], out[2], text(out[3]), text(out[4]))
            done += 1
        else:
            await ctx.script("recover", "move_done", keys, [job_id, "done"])
    return done


async def reclaim(ctx: ListsContext) -> int:
    """Sweep now: reclaim expired leases, promote due jobs, drop expired ones (bounded
    batches, repeated while a batch was full). Returns how many leases were reclaimed.

    Raises:
        BackendError: the store failed.
    """
    total = 0
    batch = ctx.options.reclaim_batch
    for _ in range(_MAX_SWEEPS):
        # the sweep records nothing; it carries the received calls whose records to forget
        args = [0, 1, batch, 0, ctx.calls.flush_arg(), 1]
        ok = False
        try:
            reply = await ctx.script("reclaim", "dequeue", ctx.block, args)
            ok = True
        finally:
            ctx.calls.settle(args, ok)
        reclaimed, dead, promoted, expired, buried = (int(x) for x in reply[:5])
        total += reclaimed
        ctx.metrics.record("dead", dead + buried)
        ctx.metrics.record("expired", expired)
        log_sweep(
            _log,
            ctx.layout.queue,
            ctx.name,
            reclaimed=reclaimed,
            dead_lettered=dead,
            buried=buried,
            expired=expired,
        )
        if max(reclaimed, dead, promoted, expired, buried) < batch:
            break
    return total


async def drop_dead(ctx: ListsContext) -> int:
    """Dead-letter retention: drop dead jobs past ``dead_retention`` or beyond ``dead_max``,
    oldest first, in bounded batches (repeated while a batch was full). Returns how many,
    also counted as ``total_dead_dropped``.

    Raises:
        BackendError: the store failed.
    """
    opts = ctx.options
    retention, limit, batch = float(opts.dead_retention), dead_max_limit(opts.dead_max), opts.reclaim_batch
    if not retention and not limit:
        return 0
    total = 0
    for _ in range(_MAX_SWEEPS):
        n = int(
            await ctx.mutate("retention", "drop_dead", ctx.block, [retention, limit, batch, ctx.call_id()])
        )
        ctx.metrics.record("dead_dropped", n)
        total += n
        if n < batch:
            break
    return total


async def run_maintenance(ctx: ListsContext) -> None:
    """Every ``reclaim_interval``: :func:`reclaim`, :func:`drop_dead`, and on a cluster
    :func:`recover_moves`."""
    while True:
        await anyio.sleep(float(ctx.options.reclaim_interval))
        try:
            await reclaim(ctx)
            await drop_dead(ctx)
            if ctx.connection().cluster:
                await recover_moves(ctx)
        except QueueStoreError:
            pass  # counted in the metrics; the next round (or a dequeue) tries again

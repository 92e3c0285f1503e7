"""The operator calls of the redis-lists backend: redrive, purge and delete.

Each is one script per page (``redrive.lua``, ``purge.lua``, ``delete.lua``), with a call
id, so a re-sent call answers with the reply of its first run instead of acting twice.
``ALL`` walks the state a page of :data:`~queuestore._admin_args.PAGE` jobs per script:
no script walks an unbounded set. A redrive to another queue moves each dead job with
:func:`.moves.move_dead` (the move machinery, one slot or across slots).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from queuestore._admin_args import PAGE, delete_id, purge_state, redrive_target, selected_ids
from queuestore._args import text, utf8_or_none
from queuestore._job import AllJobs, JobState
from queuestore.backends.redis_lists.context import ListsContext, chunks
from queuestore.backends.redis_lists.layout import SET_OF, STATE_CODE
from queuestore.backends.redis_lists.moves import move_dead

__all__ = ["delete", "purge", "redrive"]

#: bound of the pages one ``ALL`` call walks (PAGE * _MAX_PAGES jobs)
_MAX_PAGES = 1_000_000


async def redrive(ctx: ListsContext, job_ids: Sequence[str] | AllJobs, to_queue: str | None) -> int:
    """Dead jobs back to ready (here, or moved to ``to_queue``); see ``RedisListsBackend.redrive``.

    Raises:
        InvalidJobError: bad ``job_ids`` or ``to_queue``.
        OutcomeUnknownError: a script's reply was lost even to its retries.
        BackendError: the store failed.
    """
    ids, target = selected_ids(job_ids), redrive_target(to_queue, ctx.layout.queue)
    if target is not None:
        return await _redrive_to(ctx, ids, target)
    total = 0
    if ids is not None:
        for chunk in chunks(ids, PAGE):
            n, _ = await ctx.mutate("redrive", "redrive", ctx.block, [ctx.call_id(), "", PAGE, *chunk])
            total += int(n)
        return total
    cursor = "-inf"
    for _ in range(_MAX_PAGES):
        n, nxt = await ctx.mutate("redrive", "redrive", ctx.block, [ctx.call_id(), cursor, PAGE])
        total += int(n)
        cursor = text(nxt)
        if not cursor:
            break
    return total


async def _redrive_to(ctx: ListsContext, ids: list[str] | None, target: str) -> int:
    """Move each dead job among ``ids`` (None: every dead job, a page at a time) to ``target``."""
    total = 0
    if ids is not None:
        for job_id in ids:
            total += await move_dead(ctx, job_id, target)
        return total
    dead_key, cursor = ctx.block[SET_OF[JobState.DEAD]], "-inf"
    for _ in range(_MAX_PAGES):
        page = _scored(
            await ctx.command(
                "redrive", "ZRANGEBYSCORE", dead_key, cursor, "+inf", "WITHSCORES", "LIMIT", 0, PAGE
            )
        )
        for raw_id, _score in page:
            dead_id = utf8_or_none(raw_id)
            if dead_id is not None:  # one that is not stays dead here: no queue can take it
                total += await move_dead(ctx, dead_id, target)
        if len(page) < PAGE:
            break
        cursor = f"({page[-1][1]!r}"
    return total


def _scored(reply: Any) -> list[tuple[Any, float]]:
    """A ``WITHSCORES`` reply as (member, score) pairs: redis-py 5 returns the flat list of a raw
    command, later releases pairs."""
    items = list(reply)
    if items and isinstance(items[0], list | tuple):
        return [(member, float(score)) for member, score in items]
    return [(items[i], float(items[i + 1])) for i in range(0, len(items), 2)]


async def purge(ctx: ListsContext, state: JobState, job_ids: Sequence[str] | AllJobs) -> int:
    """Remove ready, delayed or dead jobs; see ``RedisListsBackend.purge``.

    Raises:
        InvalidJobError: ``state`` is IN_FLIGHT or not a state, or bad ``job_ids``.
        OutcomeUnknownError: a script's reply was lost even to its retries.
        BackendError: the store failed.
    """
    code, ids = STATE_CODE[purge_state(state)], selected_ids(job_ids)
    total = 0
    if ids is not None:
        for chunk in chunks(ids, PAGE):
            n, _ = await ctx.mutate("purge", "purge", ctx.block, [ctx.call_id(), code, "ids", PAGE, *chunk])
            total += int(n)
        return total
    for _ in range(_MAX_PAGES):
        n, more = await ctx.mutate("purge", "purge", ctx.block, [ctx.call_id(), code, "page", PAGE])
        total += int(n)
        if not int(more):
            break
    return total


async def delete(ctx: ListsContext, job_id: str) -> bool:
    """Remove one job in any state; see ``RedisListsBackend.delete``.

    Raises:
        InvalidJobError: ``job_id`` is not a non-empty str.
        OutcomeUnknownError: the script's reply was lost even to its retries.
        BackendError: the store failed.
    """
    checked = delete_id(job_id)
    return int(await ctx.mutate("delete", "delete", ctx.block, [checked, ctx.call_id()])) == 1

"""The migration SPI of the redis-lists backend: hold, held, release, restore, import.

Each migration id has a holding set under the queue's hash tag
(``queue:{Q}:held:<mid>``), in hold order; held jobs keep their body and record. Ready
jobs are held from the heads of their lists, and a restore pushes them back onto the
heads, last held first, so each is back at its old position (dead ones keep their
sequence number). Imports store jobs in the state they carry,
idempotently by id, with the enqueue script. ``get_jobs`` is a read (:mod:`.read`).
"""

from __future__ import annotations

from collections.abc import Sequence

from queuestore._job import Job, JobState
from queuestore.backends._redis.scripts import MAX_JOBS_PER_SCRIPT
from queuestore.backends.redis_lists import batches
from queuestore.backends.redis_lists.context import ListsContext, chunks
from queuestore.backends.redis_lists.layout import MIGRATABLE, STATE_CODE
from queuestore.backends.redis_lists.read import page
from queuestore.errors import InvalidJobError

__all__ = ["held", "hold", "import_jobs", "release", "restore"]


def _held_keys(ctx: ListsContext, migration_id: str) -> list[str]:
    """The key block plus the holding set of ``migration_id``.

    Raises:
        InvalidJobError: the migration id is not a non-empty string.
    """
    if not isinstance(migration_id, str) or not migration_id:
        raise InvalidJobError("migration_id", "must be a non-empty string")
    return [*ctx.block, ctx.layout.keys.key(f"held:{migration_id}")]


async def hold(ctx: ListsContext, migration_id: str, state: JobState, count: int) -> list[Job]:
    """Take up to ``count`` jobs in ``state`` (READY, DELAYED or DEAD) into the holding area (a
    script call per :data:`MAX_JOBS_PER_SCRIPT`).

    A held job whose body is missing or does not decode is held all the same (safe:
    a rollback restores it) and returned with ``last_error`` ``"corrupt: <reason>"``
    (and the raw bytes as payload), so the migration can tell it from a real job.

    Raises:
        InvalidJobError: another state, a bad count or migration id.
        BackendError: the store failed.
    """
    if state not in MIGRATABLE:
        raise InvalidJobError("state", f"only ready, delayed and dead jobs can be held, not {state}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidJobError("count", f"must be an int >= 1, got {count!r}")
    keys = _held_keys(ctx, migration_id)
    held: list[Job] = []
    while len(held) < count:  # at most MAX_JOBS_PER_SCRIPT a call: no one call holds the server long
        want = min(count - len(held), MAX_JOBS_PER_SCRIPT)
        args = [STATE_CODE[state], want, ctx.options.reclaim_batch]
        got = [
            job for job, _ in ctx.layout.read_triples(await ctx.script("migration_hold", "hold", keys, args))
        ]
        held += got
        if len(got) < want:
            break
    return held


async def held(ctx: ListsContext, migration_id: str, count: int) -> list[Job]:
    """Up to ``count`` held jobs, in the order they were held (garbage marked as by :func:`hold`).

    Raises:
        InvalidJobError, BackendError.
    """
    held_set = _held_keys(ctx, migration_id)[-1]
    entries = await page(ctx, held_set, "offset", "0", "", count, False, "migration_held")
    return [job for _, _, job in entries]


async def release(ctx: ListsContext, migration_id: str, job_ids: Sequence[str]) -> int:
    """Forget held jobs (they are safe in the target), ``batch_size`` per script. Returns how many.

    Raises:
        InvalidJobError, BackendError.
    """
    keys, ids = _held_keys(ctx, migration_id), list(job_ids)
    if not ids:
        return 0
    replies = await ctx.run_batches("migration_release", "release", keys, chunks(ids, ctx.options.batch_size))
    return sum(int(n) for n in replies)


async def restore(ctx: ListsContext, migration_id: str) -> int:
    """Put every held job back where it came from, at its old position. Returns how many.

    Raises:
        InvalidJobError, BackendError.
    """
    keys, total = _held_keys(ctx, migration_id), 0
    while True:
        n, left = await ctx.script("migration_restore", "restore", keys, [ctx.options.reclaim_batch])
        total += int(n)
        if int(left) == 0:
            return total


async def import_jobs(ctx: ListsContext, jobs: Sequence[Job]) -> list[bool]:
    """Store jobs in their carried state (READY, DELAYED, DEAD), idempotently by id.

    Raises:
        InvalidJobError, BackendError.
    """
    rows = batches.store_rows(ctx, list(jobs), importing=True)
    return await batches.store(ctx, "import_jobs", rows, importing=True)

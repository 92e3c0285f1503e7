"""The operator calls of the memory backend: redrive, purge, delete, and dead-letter retention.

Each step below runs to completion without awaiting (one atomic step, as one Lua
script); ``ALL`` is served a page of :data:`~queuestore._admin_args.PAGE` jobs per
step, with a checkpoint to the event loop between pages.
"""

from __future__ import annotations

from collections.abc import Sequence

from queuestore._admin_args import PAGE, delete_id, purge_state, redrive_target, selected_ids
from queuestore._job import AllJobs, JobState
from queuestore._retention import dead_max_limit
from queuestore.backends.memory.client import QueueClient
from queuestore.backends.memory.index import Position
from queuestore.backends.memory.layout import HELD
from queuestore.backends.memory.options import MemoryOptions
from queuestore.backends.memory.store import QueueData
from queuestore.errors import DuplicateJobError

__all__ = ["MemoryAdmin", "drop_dead", "purge_step", "redrive_step"]

#: dead jobs one maintenance pass drops at most
DROP_BATCH = 1000


def redrive_step(q: QueueData, ids: list[str], target: QueueData | None, now: float) -> int:
    """Send the dead jobs among ``ids`` back to ready (in ``q``, or moved to ``target``) with
    ``retry_count`` 0 and no dead-letter mark. Returns how many."""
    n = 0
    for job_id in ids:
        rec = q.jobs.get(job_id)
        if rec is None or rec.where != JobState.DEAD:
            continue
        if target is not None:
            try:
                q.move(job_id, None, target, now)
            except DuplicateJobError:
                continue  # the target holds another job of this id: this one stays dead here
            target.jobs[job_id].job.retry_count = 0
        else:
            q.unplace(rec)
            job = rec.job
            job.retry_count, job.dead_reason, job.dead_at, job.available_at = 0, None, None, None
            q.place(rec, JobState.READY, -float(job.priority))
        n += 1
    if n and target is None:
        q.notify()
    return n


def purge_step(q: QueueData, state: JobState, ids: list[str]) -> int:
    """Remove the jobs among ``ids`` that are in ``state``. Returns how many."""
    n = 0
    for job_id in ids:
        rec = q.jobs.get(job_id)
        if rec is not None and rec.where == state:
            q.forget(rec)
            n += 1
    return n


def drop_dead(q: QueueData, now: float, retention: float, limit: int, batch: int = DROP_BATCH) -> int:
    """Drop dead jobs dead longer than ``retention`` and, past ``limit`` dead jobs, the oldest
    (0 turns either off); at most ``batch``. Counted in ``totals["dead_dropped"]``."""
    dead, n = q.index[JobState.DEAD], 0
    while n < batch and (entry := dead.first()) is not None:
        rec = q.jobs[entry[2]]
        died = rec.job.dead_at if rec.job.dead_at is not None else now
        if not ((limit and len(dead) > limit) or (retention and died <= now - retention)):
            break
        q.forget(rec)
        n += 1
    q.totals["dead_dropped"] += n
    return n


class MemoryAdmin:
    """``redrive``, ``purge``, ``delete`` and the retention pass over a :class:`QueueClient`."""

    def __init__(self, client: QueueClient, options: MemoryOptions) -> None:
        self._client = client
        self._q = client.q
        self._options = options

    async def redrive(self, job_ids: Sequence[str] | AllJobs, to_queue: str | None) -> int:
        """See :meth:`MemoryBackend.redrive`."""
        await self._client.enter("redrive")
        ids, target_name = selected_ids(job_ids), redrive_target(to_queue, self._q.name)
        total, after = 0, None
        while True:
            self._client.sweep(reclaim=False)
            target = None if target_name is None else self._client.queue(target_name)
            if ids is None:
                page, after = self._page(JobState.DEAD, after)
                if not page:
                    return total
            else:
                page, ids = ids[:PAGE], ids[PAGE:]
            total += redrive_step(self._q, page, target, self._client.now())
            if ids == []:
                return total
            await self._client.enter("redrive")

    def _page(self, state: JobState, after: Position | None) -> tuple[list[str], Position | None]:
        entries = self._q.index[state].page(after, PAGE, False)
        return [e[2] for e in entries], (entries[-1][0], entries[-1][1]) if entries else after

    async def purge(self, state: JobState, job_ids: Sequence[str] | AllJobs) -> int:
        """See :meth:`MemoryBackend.purge`."""
        await self._client.enter("purge")
        which, ids = purge_state(state), selected_ids(job_ids)
        total, after = 0, None
        while True:
            self._client.sweep(reclaim=False)
            if ids is None:
                page, after = self._page(which, after)
                if not page:
                    return total
            else:
                page, ids = ids[:PAGE], ids[PAGE:]
            total += purge_step(self._q, which, page)
            if ids == []:
                return total
            await self._client.enter("purge")

    async def delete(self, job_id: str) -> bool:
        """See :meth:`MemoryBackend.delete`."""
        await self._client.enter("delete")
        checked = delete_id(job_id)
        self._client.sweep(reclaim=False)
        rec = self._q.jobs.get(checked)
        if rec is None or rec.where == HELD:
            return False
        self._q.forget(rec)
        return True

    def drop_dead(self) -> int:
        """One retention pass (the maintenance loop's): see :func:`drop_dead`."""
        opts = self._options
        return drop_dead(
            self._q, self._client.now(), float(opts.dead_retention), dead_max_limit(opts.dead_max)
        )

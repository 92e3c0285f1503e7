"""The migration SPI of the memory backend (the hold/write/release move protocol).

A migration takes jobs out of the queue into a holding area named by the
migration id (one atomic step per batch), writes them to the target, then
releases them here -- or restores them, in their old state and at their old
position, if the migration is rolled back. Held jobs are still "stored":
enqueueing their id is a no-op, ``get_jobs`` finds them, and they count in no
state until restored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import msgspec

from queuestore._job import Job, JobState
from queuestore.backends._memory_store import HELD, QueueData, Record, clear_lease, copy_job
from queuestore.errors import InvalidJobError

__all__ = ["MemoryMigrationMixin", "hold", "import_job", "release", "restore"]

_HOLDABLE = (JobState.READY, JobState.DELAYED, JobState.DEAD)


def hold(q: QueueData, migration_id: str, state: JobState, count: int) -> list[Job]:
    """Take up to ``count`` jobs of ``state``, in index order, into a holding area (atomic)."""
    area = q.held.setdefault(migration_id, {})
    out: list[Job] = []
    for _, _, job_id in q.index[state].head(count):
        rec = q.jobs[job_id]
        q.unplace(rec)
        rec.where, rec.held_from = HELD, state
        area[job_id] = rec
        out.append(copy_job(rec.job))
    return out


def restore(q: QueueData, migration_id: str) -> int:
    """Put every held job back at its old position (rank and seq) in its old state."""
    area = q.held.pop(migration_id, {})
    for rec in area.values():
        state = rec.held_from or JobState.READY
        rec.held_from = None
        q.place(rec, state, rec.rank, keep_seq=True)
    if area:
        q.notify()
    return len(area)


def release(q: QueueData, migration_id: str, job_ids: Iterable[str]) -> int:
    """Forget held jobs (they are safe in the target)."""
    area = q.held.get(migration_id, {})
    n = 0
    for job_id in job_ids:
        if area.pop(job_id, None) is not None:
            del q.jobs[job_id]
            n += 1
    if not area:
        q.held.pop(migration_id, None)
    return n


def import_job(q: QueueData, job: Job, now: float) -> bool:
    """Store a private copy of ``job`` in the state it carries (READY, DELAYED or DEAD)."""
    if job.id in q.jobs:
        return False
    state = job.state
    job.queue = q.name
    clear_lease(job)
    rec = Record(job, HELD)
    q.jobs[job.id] = rec
    if state == JobState.DEAD:
        q.place(rec, JobState.DEAD, 0.0)
    else:
        q.wait_or_ready(rec, now)
        if rec.where == JobState.READY:
            q.notify()
    return True


def _check_count(count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidJobError("count", f"must be an int >= 1, got {count!r}")
    return count


class MemoryMigrationMixin:
    """``migration_hold/held/release/restore`` and ``import_jobs`` over a :class:`QueueData`.

    Mixed into :class:`~queuestore.backends.memory.MemoryBackend`, which provides the
    helpers declared below.
    """

    _q: QueueData

    if TYPE_CHECKING:

        def _check_open(self, operation: str) -> None: ...
        async def _enter(self, operation: str) -> None: ...
        def _now(self) -> float: ...
        def _sweep(self) -> None: ...
        def _stored_copy(self, job: Job) -> Job: ...

    async def migration_hold(self, migration_id: str, state: JobState, count: int) -> list[Job]:
        """Atomically take up to ``count`` jobs in ``state`` into the holding area of ``migration_id``.

        READY jobs come in dequeue order, DELAYED by due time, DEAD in the order they died.

        Returns:
            Copies of the held jobs, ``state`` set to where each came from.

        Raises:
            InvalidJobError: ``state`` is IN_FLIGHT (leases are not migrated) or ``count`` < 1.
            BackendClosedError: the backend is closed.
        """
        await self._enter("migration_hold")
        if JobState(state) not in _HOLDABLE:
            raise InvalidJobError("state", f"can hold ready, delayed or dead jobs, not {state!s}")
        self._sweep()
        return hold(self._q, migration_id, JobState(state), _check_count(count))

    async def migration_held(self, migration_id: str, count: int = 1000) -> list[Job]:
        """Copies of up to ``count`` held jobs, in the order they were held.

        Raises:
            InvalidJobError: ``count`` < 1.
            BackendClosedError: the backend is closed.
        """
        await self._enter("migration_held")
        n = _check_count(count)
        area = self._q.held.get(migration_id, {})
        out: list[Job] = []
        for rec in area.values():
            if len(out) >= n:
                break
            job = copy_job(rec.job)
            job.state = rec.held_from or JobState.READY
            out.append(job)
        return out

    async def migration_release(self, migration_id: str, job_ids: Sequence[str]) -> int:
        """Drop these jobs from the holding area (they are safe in the target).

        Returns:
            How many were held and are now dropped.

        Raises:
            BackendClosedError: the backend is closed.
        """
        await self._enter("migration_release")
        return release(self._q, migration_id, list(job_ids))

    async def migration_restore(self, migration_id: str) -> int:
        """Put every held job back in its old state, at its old position.

        Returns:
            How many jobs were restored.

        Raises:
            BackendClosedError: the backend is closed.
        """
        await self._enter("migration_restore")
        return restore(self._q, migration_id)

    async def import_jobs(self, jobs: Sequence[Job]) -> list[bool]:
        """Store jobs in the state each carries (READY, DELAYED or DEAD), idempotently by id.

        An imported job may come from a queue of another name: it is stamped with this one.

        Returns:
            True per job stored, False per id already stored here.

        Raises:
            InvalidJobError: a job is invalid, or carries the IN_FLIGHT state.
            BackendClosedError: the backend is closed.
        """
        await self._enter("import_jobs")
        copies: list[Job] = []
        for job in jobs:
            if JobState(job.state) not in _HOLDABLE:
                raise InvalidJobError("state", f"can import ready, delayed or dead jobs, not {job.state!s}")
            copies.append(self._stored_copy(msgspec.structs.replace(job, queue="")))
        self._sweep()
        now = self._now()
        return [import_job(self._q, copy, now) for copy in copies]

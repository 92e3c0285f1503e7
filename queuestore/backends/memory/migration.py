"""The migration SPI of the memory backend (the hold/write/release move protocol).

A migration takes jobs out of the queue into a holding area named by the
migration id (one atomic step per batch), writes them to the target, then
releases them here -- or restores them, in their old state and at their old
position, if the migration is rolled back. Held jobs are still "stored":
enqueueing their id is a no-op, ``get_jobs`` finds them, and they count in no
state until restored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec

from queuestore._args import checked_job_ids
from queuestore._codec import JobCodec
from queuestore._job import Job, JobState
from queuestore._record import RECORD_OPS, RecordOp, RecordReply, apply_record_op
from queuestore.backends.memory.client import QueueClient
from queuestore.backends.memory.layout import HELD, copy_job, stored_copy
from queuestore.errors import InvalidJobError, QueueMovedError

__all__ = ["MemoryMigration", "queue_home"]

_HOLDABLE = (JobState.READY, JobState.DELAYED, JobState.DEAD)


def _checked_count(count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidJobError("count", f"must be an int >= 1, got {count!r}")
    return count


def _holdable(state: JobState, verb: str) -> JobState:
    checked = JobState(state)
    if checked not in _HOLDABLE:
        raise InvalidJobError("state", f"can {verb} ready, delayed or dead jobs, not {state!s}")
    return checked


def queue_home(client: QueueClient, queue: str) -> str | None:
    """The new home a migration recorded for ``queue`` of ``client``'s namespace, or None."""
    record, expires = client.ns.records.get(queue, ({}, None))
    return None if expires is not None and expires <= client.now() else record.get("home")


class MemoryMigration:
    """``get_jobs``, ``migration_hold/held/release/restore`` and ``import_jobs`` over a :class:`QueueClient`.

    ``codec`` is the backend's wire format: an imported job is stored as a private
    copy made through it, as :meth:`MemoryBackend.enqueue` stores one.
    """

    def __init__(self, client: QueueClient, codec: JobCodec) -> None:
        self._client = client
        self._q = client.q
        self._codec = codec

    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job | None]:
        """Copies of jobs by id in any state (a held job keeps the state it was held from).

        Returns:
            One entry per id: the job with ``state`` set, or None when it is not stored.

        Raises:
            InvalidJobError: ``job_ids`` is not a sequence of str.
            BackendClosedError: the backend is closed.
        """
        await self._client.enter("get_jobs")
        ids = checked_job_ids(job_ids)
        self._client.sweep()
        recs = [self._q.jobs.get(job_id) for job_id in ids]
        return [None if rec is None else copy_job(rec.job) for rec in recs]

    async def hold(self, migration_id: str, state: JobState, count: int) -> list[Job]:
        """Atomically take up to ``count`` jobs in ``state`` into the holding area of ``migration_id``.

        READY jobs come in dequeue order, DELAYED by due time, DEAD in the order they died.

        Returns:
            Copies of the held jobs, ``state`` set to where each came from.

        Raises:
            InvalidJobError: ``state`` is IN_FLIGHT (leases are not migrated) or ``count`` < 1.
            BackendClosedError: the backend is closed.
        """
        await self._client.enter("migration_hold")
        holdable = _holdable(state, "hold")
        self._client.sweep()
        q, n = self._q, _checked_count(count)
        area = q.held.setdefault(migration_id, {})
        out: list[Job] = []
        for _, _, job_id in q.index[holdable].head(n):
            rec = q.jobs[job_id]
            q.unplace(rec)
            rec.where, rec.held_from = HELD, holdable
            area[job_id] = rec
            out.append(copy_job(rec.job))
        return out

    async def held(self, migration_id: str, count: int) -> list[Job]:
        """Copies of up to ``count`` held jobs, in the order they were held.

        Raises:
            InvalidJobError: ``count`` < 1.
            BackendClosedError: the backend is closed.
        """
        await self._client.enter("migration_held")
        n = _checked_count(count)
        out: list[Job] = []
        for rec in self._q.held.get(migration_id, {}).values():
            if len(out) >= n:
                break
            job = copy_job(rec.job)
            job.state = rec.held_from or JobState.READY
            out.append(job)
        return out

    async def release(self, migration_id: str, job_ids: Sequence[str]) -> int:
        """Drop these jobs from the holding area (they are safe in the target).

        Returns:
            How many were held and are now dropped.

        Raises:
            BackendClosedError: the backend is closed.
        """
        await self._client.enter("migration_release")
        q = self._q
        area = q.held.get(migration_id, {})
        n = 0
        for job_id in list(job_ids):
            if area.pop(job_id, None) is not None:
                del q.jobs[job_id]
                n += 1
        if not area:
            q.held.pop(migration_id, None)
        return n

    async def restore(self, migration_id: str) -> int:
        """Put every held job back in its old state, at its old position (rank and seq).

        Returns:
            How many jobs were restored.

        Raises:
            BackendClosedError: the backend is closed.
        """
        await self._client.enter("migration_restore")
        q = self._q
        area = q.held.pop(migration_id, {})
        for rec in area.values():
            state = rec.held_from or JobState.READY
            rec.held_from = None
            q.place(rec, state, rec.rank, keep_seq=True)
        if area:
            q.notify()
        return len(area)

    async def import_jobs(self, jobs: Sequence[Job]) -> list[bool]:
        """Store jobs in the state each carries (READY, DELAYED or DEAD), idempotently by id.

        An imported job may come from a queue of another name: it is stamped with this one.

        Returns:
            True per job stored, False per id already stored here.

        Raises:
            InvalidJobError: a job is invalid, or carries the IN_FLIGHT state.
            BackendClosedError: the backend is closed.
            QueueMovedError: a migration moved the queue (nothing stored).
        """
        await self._client.enter("import_jobs")
        copies: list[Job] = []
        for job in jobs:
            _holdable(job.state, "import")
            copies.append(stored_copy(msgspec.structs.replace(job, queue=""), self._q.name, self._codec))
        if (home := self.home()) is not None:  # a migration moved the queue: nothing is stored
            raise QueueMovedError(self._q.name, "import_jobs", home)
        self._client.sweep()
        now = self._client.now()
        return [self._q.add(copy, now, dead=copy.state == JobState.DEAD) for copy in copies]

    def home(self, queue: str | None = None) -> str | None:
        """The new home a migration recorded for ``queue`` (default: this queue), or None: a
        storing call checks it in the same uninterrupted step that stores."""
        return queue_home(self._client, queue or self._q.name)

    async def record(
        self, op: RecordOp, owner: str, lease: float, retention: float, fields: Mapping[str, str]
    ) -> RecordReply:
        """One operation on the queue's migration record, kept in the namespace (the
        reference semantics: :func:`queuestore._record.apply_record_op`).

        Raises:
            InvalidJobError: an unknown ``op``.
        """
        if op not in RECORD_OPS:
            raise InvalidJobError("op", f"must be one of {', '.join(RECORD_OPS)}, got {op!r}")
        records, now = self._client.ns.records, self._client.now()
        record, expires = records.get(self._q.name, ({}, None))
        if expires is not None and expires <= now:
            record, expires = {}, None
        reply = apply_record_op(record, op, owner=owner, lease=float(lease), fields=fields, now=now)
        if reply.granted and op != "read":
            expires = now + retention if op == "release" and retention > 0 else None
        if record:
            records[self._q.name] = (record, expires)
        else:
            records.pop(self._q.name, None)
        return reply

"""The migration SPI: what a backend offers so that a queue can be moved to or from it."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

from queuestore._job import Job, JobState
from queuestore._record import RecordOp, RecordReply

__all__ = ["LeaseHandBack", "MigrationSupport"]


class MigrationSupport(abc.ABC):
    """The migration SPI: what a backend offers so that a queue can be moved to or from it.

    A service never calls these; the migration layer requires them of both sides (a
    backend that is not a ``MigrationSupport`` cannot take part in a migration). The
    move is hold -> write to the target -> release; ``migration_restore`` undoes a hold.
    """

    @abc.abstractmethod
    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job | None]:
        """Look jobs up by id in any state (ready, delayed, in flight, dead, held by a migration).

        Returns one entry per id: the job with ``state`` set, or None when it is
        not stored (acked, expired, never enqueued). One round trip.

        Raises:
            BackendError: the store failed.
        """

    @abc.abstractmethod
    async def migration_hold(self, migration_id: str, state: JobState, count: int) -> list[Job]:
        """Atomically take up to ``count`` jobs in ``state`` (READY in dequeue order,
        DELAYED by due time, DEAD) out of the queue into the holding area of
        ``migration_id``, and return them (with ``state`` set to where they came from).
        """

    @abc.abstractmethod
    async def migration_held(self, migration_id: str, count: int = 1000) -> list[Job]:
        """Up to ``count`` jobs in the holding area, in the order they were held."""

    @abc.abstractmethod
    async def migration_release(self, migration_id: str, job_ids: Sequence[str]) -> int:
        """Drop these jobs from the holding area (they are safe in the target). Returns how many."""

    @abc.abstractmethod
    async def migration_restore(self, migration_id: str) -> int:
        """Put every held job back where it came from, keeping its order. Returns how many."""

    @abc.abstractmethod
    async def import_jobs(self, jobs: Sequence[Job]) -> list[bool]:
        """Store jobs in the state each one carries (READY, DELAYED or DEAD), idempotently by id.

        Order is kept within a priority. True per job stored, False per id already present.
        """

    @abc.abstractmethod
    async def migration_record(
        self,
        op: RecordOp,
        *,
        owner: str = "",
        lease: float = 0.0,
        retention: float = 0.0,
        fields: Mapping[str, str] | None = None,
    ) -> RecordReply:
        """Read or change this queue's migration record in one atomic step (see
        :mod:`queuestore._record`: ``read``, ``claim``, ``update``, ``release``).

        Raises:
            InvalidJobError: an unknown ``op``.
            BackendError: the store failed.
        """


class LeaseHandBack(abc.ABC):
    """A backend that can hand leased jobs back unseen: ready again, their attempt not counted.

    A migration's follower leases from a side and then learns, from a fresh read of the
    records, that it may not keep what it leased; it hands the jobs back rather than nacking
    them (a nack counts a retry, and a job at its ``max_retries`` would be dead-lettered for
    an attempt nobody made).
    """

    @abc.abstractmethod
    async def migration_give_back(self, jobs: Sequence[Job]) -> None:
        """Hand back jobs this process leased and nobody processed, each under the lease
        token it carries; a job whose lease is no longer that one is left alone. Best effort:
        a failure is logged, and a job not given back comes back when its lease expires
        (the attempt then counted). Never raises for a store failure.
        """

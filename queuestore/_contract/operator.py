"""What an operator calls: redrive dead-lettered jobs, purge a state, delete one job.

The argument checks these share live in :mod:`queuestore._admin_args`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from queuestore._job import AllJobs, JobState

__all__ = ["OperatorOperations"]


class OperatorOperations(abc.ABC):
    """Dead letters, purge and delete; subclasses implement the abstract coroutines."""

    @abc.abstractmethod
    async def redrive(self, job_ids: Sequence[str] | AllJobs, *, to_queue: str | None = None) -> int:
        """Send dead-lettered jobs back: ready again in this queue, or moved to ``to_queue``.

        A redriven job keeps its history (``attempt``, ``last_error``, ``origin_queue``)
        with ``retry_count`` reset to 0 and no dead-letter mark (``dead_reason``,
        ``dead_at``), and goes to the back of its priority's ready order. ``ALL`` walks
        the dead jobs in bounded pages, one atomic step per page. Ids that are not dead
        here are skipped (not counted, not an error). With ``to_queue`` (another queue of
        the same store) the job moves as :meth:`move` moves it, ready there; a job whose id
        the target stores already stays dead here (not counted). ``to_queue`` naming this
        queue is a redrive in place.

        Returns:
            How many jobs were redriven.

        Raises:
            InvalidJobError: ``job_ids`` is neither ``ALL`` nor a sequence of ids, or
                ``to_queue`` is empty.
            BackendError: the store failed.
        """

    @abc.abstractmethod
    async def purge(self, state: JobState, job_ids: Sequence[str] | AllJobs) -> int:
        """Remove jobs in ``state`` (READY, DELAYED or DEAD): they are gone, not acked.

        ``ALL`` walks the state in bounded pages, one atomic step per page. Ids not
        in ``state`` here are skipped.

        Returns:
            How many jobs were removed.

        Raises:
            InvalidJobError: ``state`` is IN_FLIGHT or not a state (``field="state"``), or
                ``job_ids`` is neither ``ALL`` nor a sequence of ids.
            BackendError: the store failed.
        """

    @abc.abstractmethod
    async def delete(self, job_id: str) -> bool:
        """Remove one job, whatever its state. A leased job's holder then gets
        :class:`~queuestore.LeaseLostError` from its ack, nack, extend_lease or move.

        Returns:
            True if the job was stored here (and is now gone).

        Raises:
            InvalidJobError: ``job_id`` is not a non-empty string.
            BackendError: the store failed.
        """

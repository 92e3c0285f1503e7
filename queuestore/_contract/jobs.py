"""What a producer and a worker call: enqueue, dequeue, ack, nack, extend_lease, move.

Job arguments (``ack``, ``nack``, ``move``, ``extend_lease``) take either the
``Job`` that ``dequeue`` returned -- guarded by its lease token, so a stale
holder gets :class:`~queuestore.LeaseLostError` -- or a bare job id, which acts
on whatever lease is current (unguarded). The batch forms are optional
(``capabilities().batch_operations``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import timedelta

from queuestore._args import JobRef
from queuestore._job import Job
from queuestore._models import DequeueOptions
from queuestore.errors import UnsupportedOperationError

__all__ = ["JobOperations"]


class JobOperations(abc.ABC):
    """The job path of a backend; subclasses implement the abstract coroutines."""

    name: str

    @abc.abstractmethod
    async def enqueue(self, job: Job) -> bool:
        """Store a job as ready (or delayed, if ``available_at`` is in the future).

        Returns:
            True if stored; False if its id (or idempotency key, within the
            window) was stored already -- nothing changed, so a retry after an
            unknown outcome is safe.

        Raises:
            InvalidJobError: the job is invalid (the field is named).
            BackendError: the store failed (ConnectionFailedError, OperationTimeoutError...).
        """

    @abc.abstractmethod
    async def dequeue(self, options: DequeueOptions | None = None) -> Job | None:
        """Lease the next ready job, waiting up to ``options.timeout``.

        Returns:
            The job, with ``attempt`` incremented and ``lease_token`` /
            ``lease_deadline`` set; None if none came within the timeout.

        Raises:
            InvalidJobError: bad options (negative timeout...).
            BackendError: the store failed.
        """

    @abc.abstractmethod
    async def ack(self, job: JobRef) -> None:
        """Acknowledge a leased job: it is gone.

        Raises:
            JobNotFoundError: the job is not in flight.
            LeaseLostError: the given Job's lease is no longer the current one.
            BackendError: the store failed.
        """

    @abc.abstractmethod
    async def nack(
        self,
        job: JobRef,
        requeue: bool = True,
        *,
        delay: float | timedelta | None = None,
        error: str | None = None,
    ) -> None:
        """Give a leased job back.

        With ``requeue`` the job is ready again (or delayed by ``delay``) with
        ``retry_count + 1``, unless that exceeds ``max_retries``: then, as with
        ``requeue=False``, it is dead-lettered with ``error`` as the reason.
        Without an explicit ``delay`` the backend's ``retry_backoff`` option sets
        it (none by default: the job is ready at once); an explicit one wins.

        Raises:
            JobNotFoundError: the job is not in flight.
            LeaseLostError: the given Job's lease is no longer the current one.
            InvalidJobError: a negative delay or a bad job argument.
            BackendError: the store failed.
        """

    @abc.abstractmethod
    async def extend_lease(self, job: JobRef, seconds: float | timedelta) -> float:
        """Push a lease's deadline to ``seconds`` from now; return the new deadline.

        Raises:
            JobNotFoundError: the job is not in flight.
            LeaseLostError: the given Job's lease is no longer the current one.
            InvalidJobError: ``seconds`` is not > 0, or a bad job argument.
            BackendError: the store failed.
        """

    @abc.abstractmethod
    async def move(self, job: JobRef, target_queue: str) -> None:
        """Move a job, by id, to another queue on the same store (e.g. a DLQ).

        Works on a leased job (guarded as ack is) and on a ready, delayed or
        dead job. The job arrives ready in the target queue.

        Raises:
            JobNotFoundError: the job is not stored here.
            LeaseLostError: the given Job's lease is no longer the current one.
            InvalidJobError: an empty target or the backend's own queue.
            BackendError: the store failed.
        """

    # -- batch (where capabilities().batch_operations) ---------------------------------
    async def enqueue_many(self, jobs: Sequence[Job]) -> list[bool]:
        """Enqueue several jobs in one round trip (the Redis backends split a large batch into
        several script calls, so that none holds the server long); one bool per job as
        :meth:`enqueue`.

        Raises:
            UnsupportedOperationError: batch_operations is false.
        """
        raise UnsupportedOperationError(self.name, "enqueue_many", "batch operations not supported")

    async def dequeue_many(self, options: DequeueOptions | None = None) -> list[Job]:
        """Lease up to ``options.count`` jobs in one round trip (waiting up to timeout for the
        first; the Redis backends take at most 1,000 per script call, a larger count in several).

        Raises:
            UnsupportedOperationError: batch_operations is false.
        """
        raise UnsupportedOperationError(self.name, "dequeue_many", "batch operations not supported")

    async def ack_many(self, jobs: Sequence[JobRef]) -> list[bool]:
        """Ack several jobs in one round trip (the Redis backends split a large batch into
        several script calls); True per job that was in flight and is now acked.

        A stale token or unknown id yields False for that job (no exception).

        Raises:
            UnsupportedOperationError: batch_operations is false.
        """
        raise UnsupportedOperationError(self.name, "ack_many", "batch operations not supported")

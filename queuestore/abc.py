"""The backend contract: ``QueueBackend``, ``BackendFactory`` and their helpers.

A backend serves one queue (``BackendConfig.queue_name()``) on one store. It is
an async context manager: ``create`` (from a factory or the registry) returns
it connected; ``async with`` additionally runs its maintenance loop (reclaim of
expired leases, promotion of due delayed jobs) in a task group that is opened
and closed in the same task. Correctness never depends on that loop: dequeue
reclaims and promotes opportunistically too.

Job arguments (``ack``, ``nack``, ``move``, ``extend_lease``) take either the
``Job`` that ``dequeue`` returned -- guarded by its lease token, so a stale
holder gets :class:`~queuestore.LeaseLostError` -- or a bare job id, which acts
on whatever lease is current (unguarded).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import anyio
import msgspec

from queuestore._args import JobRef, parse_options
from queuestore._job import AllJobs, Job, JobState
from queuestore._models import (
    BackendCapabilities,
    BackendConfig,
    BackendStats,
    DefaultsConfig,
    DequeueOptions,
    HealthStatus,
    IterOptions,
)
from queuestore.errors import (
    BackendClosedError,
    ConfigurationError,
    UnsupportedOperationError,
)

__all__ = [
    "BackendFactory",
    "JobRef",
    "MigrationSupport",
    "QueueBackend",
]

OptionsT = TypeVar("OptionsT", bound=msgspec.Struct)


class QueueBackend(abc.ABC):
    """A queue store. Subclasses implement the abstract coroutines.

    Attributes:
        name: the backend's configured name (for errors and stats).
        queue: the queue this backend serves.
    """

    name: str
    queue: str

    def __init__(self, config: BackendConfig) -> None:
        self.name = config.name or config.type
        self.queue = config.queue_name()
        self._opened = False
        self._closed = False
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._maintenance: anyio.CancelScope | None = None

    # -- lifecycle -----------------------------------------------------------------
    async def open(self) -> None:
        """Connect, probe the server and load scripts. Idempotent.

        Raises:
            ConnectionFailedError: the server is unreachable.
            BackendClosedError: the backend was closed already.
        """
        if self._closed:
            raise BackendClosedError(self.name, "open", "backend is closed")
        if not self._opened:
            await self._open()
            self._opened = True

    async def _open(self) -> None:  # noqa: B027 - optional hook
        """Subclass hook for :meth:`open`."""

    async def _close(self) -> None:  # noqa: B027 - optional hook
        """Subclass hook for :meth:`aclose`: release connections."""

    async def run_maintenance(self) -> None:
        """Run the maintenance loop (reclaim, promotion) until cancelled.

        The default does nothing; backends with leases override it.
        """
        await anyio.sleep_forever()

    async def __aenter__(self) -> Self:
        await self.open()
        stack = contextlib.AsyncExitStack()
        tg = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tg.cancel_scope.cancel)
        tg.start_soon(self.run_maintenance)
        self._exit_stack, self._maintenance = stack, tg.cancel_scope
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._exit_stack = self._exit_stack, None
        try:
            if stack is not None:
                await stack.aclose()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close connections. Idempotent; the backend cannot be reopened."""
        if self._closed:
            return
        self._closed = True
        if self._maintenance is not None:
            # closed from inside its own `async with`: stop maintenance now;
            # __aexit__ still exits the task group in the task that entered it.
            self._maintenance.cancel()
        with anyio.CancelScope(shield=True):
            await self._close()

    async def close(self) -> None:
        """Alias of :meth:`aclose`."""
        await self.aclose()

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._closed

    def _check_open(self, operation: str) -> None:
        if self._closed or not self._opened:
            raise BackendClosedError(
                self.name, operation, "backend is closed" if self._closed else "backend is not open"
            )

    # -- core ---------------------------------------------------------------------
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

    # -- operator: dead letters, purge, delete --------------------------------------------
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

    @abc.abstractmethod
    async def length(self) -> int:
        """Jobs waiting: ready + delayed (not in flight, not dead)."""

    @abc.abstractmethod
    async def peek(self, offset: int = 0) -> Job | None:
        """The ready job at ``offset`` in dequeue order (0 = next), without leasing it.

        Raises:
            InvalidJobError: offset < 0.
        """

    @abc.abstractmethod
    def iter(self, options: IterOptions | None = None) -> AsyncIterator[Job]:
        """Walk stored jobs page by page (never loading the whole queue)."""

    @abc.abstractmethod
    def capabilities(self) -> BackendCapabilities:
        """What this backend, on its connected server, supports (probed at open)."""

    @abc.abstractmethod
    async def stats(self) -> BackendStats:
        """Depth per state, rates, error ratio, latencies, pool usage.

        Raises:
            BackendError: the store failed.
        """

    @abc.abstractmethod
    async def health(self) -> HealthStatus:
        """Check reachability, latency and data-safety settings. Never raises."""

    # -- batch (where capabilities().batch_operations) ---------------------------------
    async def enqueue_many(self, jobs: Sequence[Job]) -> list[bool]:
        """Enqueue several jobs in one round trip; one bool per job as :meth:`enqueue`.

        Raises:
            UnsupportedOperationError: batch_operations is false.
        """
        raise UnsupportedOperationError(self.name, "enqueue_many", "batch operations not supported")

    async def dequeue_many(self, options: DequeueOptions | None = None) -> list[Job]:
        """Lease up to ``options.count`` jobs in one round trip (waiting up to timeout for the first).

        Raises:
            UnsupportedOperationError: batch_operations is false.
        """
        raise UnsupportedOperationError(self.name, "dequeue_many", "batch operations not supported")

    async def ack_many(self, jobs: Sequence[JobRef]) -> list[bool]:
        """Ack several jobs in one round trip; True per job that was in flight and is now acked.

        A stale token or unknown id yields False for that job (no exception).

        Raises:
            UnsupportedOperationError: batch_operations is false.
        """
        raise UnsupportedOperationError(self.name, "ack_many", "batch operations not supported")

    # -- misc -----------------------------------------------------------------------
    def __repr__(self) -> str:
        state = "closed" if self._closed else ("open" if self._opened else "new")
        return f"<{type(self).__name__} name={self.name!r} queue={self.queue!r} {state}>"


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


class BackendFactory(abc.ABC, Generic[OptionsT]):
    """Creates backends of one type from a generic :class:`BackendConfig`."""

    #: the typed options Struct (forbids unknown fields)
    options_type: type[OptionsT]

    def parse(self, config: BackendConfig) -> OptionsT:
        """Check the config and return its typed options.

        Raises:
            ConfigurationError: naming the field (``options.<name>``, ``url``...).
        """
        if not isinstance(config.options, dict):
            raise ConfigurationError("options", "must be a mapping")
        if config.database is not None and (isinstance(config.database, bool) or config.database < 0):
            raise ConfigurationError("database", f"must be an int >= 0, got {config.database!r}")
        opts = parse_options(self.options_type, config.options)
        self.check(config, opts)
        return opts

    def check(self, config: BackendConfig, options: OptionsT) -> None:
        """Extra checks on top of the typed parse (override to add some)."""

    def option_names(self) -> frozenset[str]:
        """The option names ``options_type`` accepts."""
        return frozenset(f.encode_name for f in msgspec.structs.fields(self.options_type))

    def option_defaults(self, defaults: DefaultsConfig) -> dict[str, Any]:
        """The options this type takes from a config's ``defaults:`` section.

        ``StorageConfig.apply_defaults`` fills them, over the connection defaults
        every Redis-family type gets, where the operator set nothing. The base
        gives none; a factory with tuned values of its own overrides this.
        """
        return {}

    def validate(self, config: BackendConfig) -> None:
        """Raise ConfigurationError if ``config`` cannot make a backend."""
        self.parse(config)

    @abc.abstractmethod
    async def create(self, config: BackendConfig) -> QueueBackend:
        """Make a backend and open it (connect, probe, load scripts).

        Raises:
            ConfigurationError: the config is invalid.
            ConnectionFailedError: the server is unreachable.
        """

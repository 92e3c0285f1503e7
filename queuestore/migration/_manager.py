"""``MigrationManager``: live migrations running in the background, one per queue."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

import anyio
import anyio.abc

from queuestore._manager import BackendManager
from queuestore.abc import MigrationSupport
from queuestore.errors import MigrationError, MigrationInProgressError, MigrationNotFoundError
from queuestore.migration._models import MigrationOptions, MigrationStatus
from queuestore.migration._protocol import StepHook
from queuestore.migration._record import read_status, status_of
from queuestore.migration._rollback import rollback
from queuestore.migration._routing import RoutingBackend
from queuestore.migration._runner import MigrationRun
from queuestore.migration._status_feed import StatusFeed

__all__ = ["MigrationManager"]


class MigrationManager:
    """Starts, watches, cancels and rolls back migrations of the queues of a BackendManager.

    Use as ``async with MigrationManager(manager) as mm:``. It owns an anyio task
    group (opened in ``__aenter__``, closed in ``__aexit__`` in the same task) in
    which migrations run; leaving the block cancels the ones still running (each
    is left resumable). Statuses stay readable after a run ends, until
    :meth:`clear_status`.

    Args:
        manager: the BackendManager whose queues migrate.
        step_hook: ``await hook(step, batch)`` after each protocol step (instrumentation, tests).
    """

    def __init__(self, manager: BackendManager, *, step_hook: StepHook | None = None) -> None:
        self._manager = manager
        self._hook = step_hook
        self._runs: dict[str, MigrationRun] = {}
        self._stack: contextlib.AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> Self:
        if self._stack is not None:
            raise RuntimeError("MigrationManager is already entered")
        stack = contextlib.AsyncExitStack()
        self._tg = await stack.enter_async_context(anyio.create_task_group())
        self._stack = stack
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        stack, self._stack = self._stack, None
        for run in self._runs.values():
            run.cancel_scope.cancel()
        try:
            if stack is not None:
                await stack.aclose()
        finally:
            self._tg = None

    # -- starting ---------------------------------------------------------------------------
    async def start_migration(self, queue: str, options: MigrationOptions) -> MigrationStatus:
        """Start migrating ``queue`` in the background; return the first status snapshot at once.

        A queue with an unfinished earlier migration to the same target resumes it
        (the migration id is deterministic per queue, source and target); when that
        run's status is known here, its counts and progress carry on.

        Raises:
            MigrationInProgressError: ``queue`` is migrating already (MIGRATION_IN_PROGRESS).
            ConfigurationError: bad options (the field is named).
            MigrationError: in phase "validation": unknown queue or backend, wrong source.
            RuntimeError: the MigrationManager is not entered (``async with``).
        """
        if self._tg is None:
            raise RuntimeError("use `async with MigrationManager(manager)` before starting migrations")
        earlier = self._runs.get(queue)
        previous = earlier.feed.snapshot() if earlier is not None and earlier.feed.finished else None
        run = MigrationRun(self._manager, queue, options, hook=self._hook)
        run.start(previous)
        first = await run.claim()
        self._runs[queue] = run
        self._tg.start_soon(run.execute, name=f"migration {queue}")
        return first

    async def resume(self, queue: str) -> MigrationStatus:
        """Start ``queue``'s last migration again with the same options (finishes what it held).

        Raises:
            MigrationNotFoundError: no migration of ``queue`` is known here.
            MigrationInProgressError: it is still running.
        """
        return await self.start_migration(queue, self._run(queue).options)

    # -- watching ---------------------------------------------------------------------------
    def _run(self, queue: str) -> MigrationRun:
        try:
            return self._runs[queue]
        except KeyError:
            raise MigrationNotFoundError(f"no migration of queue {queue!r}") from None

    def get_migration_status(self, queue: str) -> MigrationStatus:
        """A snapshot of the status of ``queue``'s migration (also after it ended).

        Raises:
            MigrationNotFoundError: no migration of ``queue`` is known (MIGRATION_NOT_FOUND).
        """
        return self._run(queue).feed.snapshot()

    async def read_migration_status(self, queue: str) -> MigrationStatus:
        """The status of ``queue``'s migration as the migration record in the source's store
        holds it, whichever process runs (or ran) it: written every 0.25 s by the run, with
        the owning process (``owner``, None once it ended) and the queue's new home (``home``).

        The record is looked up in the store of the backend serving ``queue`` here (behind
        a routing proxy, its source); after this process switched the queue to the target,
        this process's own snapshot is returned, and after it followed another process's
        run to the target, the record it read in the source's store when it switched.

        Raises:
            MigrationNotFoundError: no record and no migration known here.
            QueueNotFoundError: ``queue`` is not served by the BackendManager.
            BackendError: the store failed.
        """
        backend = self._manager.get_backend(queue)
        source = backend.source if isinstance(backend, RoutingBackend) else backend
        status = await read_status(source) if isinstance(source, MigrationSupport) else None
        if status is None:
            moved = self._manager.moved_record(queue)
            status = status_of(moved) if moved is not None else None
        if status is None:
            return self.get_migration_status(queue)
        return status

    def list_migrations(self) -> dict[str, MigrationStatus]:
        """Snapshots of every known migration, by queue."""
        return {q: r.feed.snapshot() for q, r in sorted(self._runs.items())}

    def clear_status(self, queue: str) -> None:
        """Forget a finished migration's status.

        Raises:
            MigrationNotFoundError: none is known.
            MigrationInProgressError: it is still running.
        """
        run = self._run(queue)
        if not run.feed.finished:
            raise MigrationInProgressError(
                str(run.feed.status.phase), f"migration of {queue!r} is still running"
            )
        del self._runs[queue]

    async def wait(self, queue: str) -> MigrationStatus:
        """Wait until ``queue``'s migration ends; return its final status.

        Raises:
            MigrationNotFoundError: none is known.
        """
        run = self._run(queue)
        await run.feed.done.wait()
        return run.feed.snapshot()

    async def progress(self, queue: str) -> AsyncIterator[MigrationStatus]:
        """Yield a snapshot now and one per status change (none skipped), ending with the final one.

        Raises:
            MigrationNotFoundError: none is known.
        """
        async for snap in self._run(queue).feed.watch():
            yield snap

    # -- stopping ---------------------------------------------------------------------------
    async def cancel_migration(self, queue: str) -> MigrationStatus:
        """Cancel ``queue``'s running migration and wait until it has stopped.

        Every job is then in the source or the target exactly once (what was held is
        finished), the queue keeps being served from both, and :meth:`resume` (or a new
        start) continues. Cancelling a finished migration returns its status unchanged.

        Raises:
            MigrationNotFoundError: none is known.
        """
        run = self._run(queue)
        run.cancel_scope.cancel()
        await run.feed.done.wait()
        return run.feed.snapshot()

    async def rollback_migration(
        self, queue: str, options: MigrationOptions | None = None
    ) -> MigrationStatus:
        """Undo ``queue``'s incomplete migration (see ``queuestore.migration._rollback``).

        ``options`` default to those of the last migration known here (give them after
        a process restart).

        Raises:
            MigrationNotFoundError: no options given and no migration known.
            MigrationInProgressError: it is still running (cancel it first).
            MigrationError: it completed already, or a backend failed (run it again).
        """
        run = self._runs.get(queue)
        if run is not None and not run.feed.finished:
            raise MigrationInProgressError(str(run.feed.status.phase), f"migration of {queue!r} is running")
        if run is not None and run.feed.status.phase == "completed" and not run.options.dry_run:
            raise MigrationError("completed", f"migration of {queue!r} completed; migrate back instead")
        opts = options or self._run(queue).options
        status = await rollback(self._manager, queue, opts)
        done = MigrationRun(self._manager, queue, opts)
        done.feed = StatusFeed.ended(status)
        self._runs[queue] = done
        return done.feed.snapshot()

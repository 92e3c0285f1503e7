"""The copying phase of a migration run: passes of hold / write / release, and the counts.

The totals are known before copying starts (what the source holds, plus what an
earlier run of the same migration moved, when resuming); at the end of copying
``total_jobs`` is what really moved, was skipped or failed (jobs consumed on the
source meanwhile are said in a message), so ``migrated + skipped + failed == total``.
Counts come from the run's ledger, so a batch stopped half-way (a conflict, a
cancel) is counted for what it did.
"""

from __future__ import annotations

import anyio

from queuestore.abc import QueueBackend
from queuestore.errors import MigrationError
from queuestore.migration._models import MigrationOptions
from queuestore.migration._protocol import MOVABLE, Ledger, StepHook, finish_held, move_batch, spi
from queuestore.migration._routing import RoutingBackend
from queuestore.migration._status_feed import StatusFeed

__all__ = ["Copier"]


class Copier:
    """Copies a queue's jobs from a source to a target for one run, keeping the status counts.

    Args:
        feed: the run's status.
        ledger: the run's ledger of what was written.
        options: the run's options (batch size, on_corrupt).
        hook: ``await hook(step, batch)`` after each protocol step.

    Attributes:
        batch: the number of the last batch moved in this run.
    """

    def __init__(
        self, feed: StatusFeed, ledger: Ledger, options: MigrationOptions, hook: StepHook | None
    ) -> None:
        self.feed, self.ledger, self.options, self.hook = feed, ledger, options, hook
        self.batch = 0
        #: ``anyio.current_time()`` before which nothing moves (the runner's grace after sealing)
        self.not_before = 0.0

    def _counts(self) -> tuple[int, int, int]:
        return self.ledger.written, self.ledger.skipped, self.ledger.corrupt

    def _account(self, before: tuple[int, int, int], **extra: object) -> int:
        """Add what the ledger counted since ``before`` (written, skipped, corrupt) to the status;
        return how many jobs that was."""
        st, (written, skipped, corrupt) = self.feed.status, self._counts()
        self.feed.update(
            migrated_jobs=st.migrated_jobs + written - before[0],
            skipped_jobs=st.skipped_jobs + skipped - before[1],
            failed_jobs=st.failed_jobs + corrupt - before[2],
            **extra,
        )
        return written + skipped + corrupt - sum(before)

    async def finish_held(self, source: QueueBackend, target: QueueBackend, mid: str) -> int:
        """Finish what the holding area of ``mid`` holds (counted); return how many were written.

        Raises:
            MigrationError, BackendError: as :func:`~queuestore.migration._protocol.move_batch`.
        """
        before = self._counts()
        try:
            return await finish_held(
                source, target, mid, self.options.batch_size, self.ledger, on_corrupt=self.options.on_corrupt
            )
        finally:
            self._account(before)

    async def copy(self, source: QueueBackend, target: QueueBackend, mid: str, proxy: RoutingBackend) -> None:
        """The copying phase: set the total, enter the phase, move everything, settle the total.

        Raises:
            MigrationError: in phase "copying" (a corrupt entry, a conflict, undecodable held entries).
            BackendError: a backend failed (what is held stays held, for the clean-up or a resume).
        """
        st, held = await source.stats(), len(await spi(source).migration_held(mid, 10_000))
        done = self.feed.status
        self.feed.update(
            total_jobs=done.migrated_jobs + done.skipped_jobs + done.failed_jobs
            + held + st.queue_depth + st.delayed + st.dead
        )  # fmt: skip
        self.feed.start_copying()
        await anyio.sleep(max(0.0, self.not_before - anyio.current_time()))
        resumed = await self.finish_held(source, target, mid)
        if resumed:
            self.feed.note(f"resumed: finished {resumed} jobs held by an earlier run")
        await self._pass(source, target, mid)
        proxy.source_dequeue = False  # from now on the source's leases only run out
        pause = 0.02
        while True:
            in_flight = (await source.stats()).in_flight
            self.feed.update(in_flight_on_source=in_flight)
            moved = await self._pass(source, target, mid)
            if moved == 0 and in_flight == 0:
                break
            if moved == 0:
                await anyio.sleep(pause)
                pause = min(pause * 2, 0.5)
        unreadable = await spi(source).migration_restore(mid)
        if unreadable:
            raise MigrationError(
                "copying",
                f"{unreadable} entries held by {mid} could not be decoded by {source.name!r} "
                "(they were put back on the source; repair or remove them, then resume)",
            )
        self._settle_total()

    async def _pass(self, source: QueueBackend, target: QueueBackend, mid: str) -> int:
        moved = 0
        for state in MOVABLE:
            while jobs := await spi(source).migration_hold(mid, state, self.options.batch_size):
                self.batch += 1
                before = self._counts()
                try:
                    await move_batch(
                        source, target, mid, jobs, self.ledger,
                        on_corrupt=self.options.on_corrupt, hook=self.hook, batch_no=self.batch,
                    )  # fmt: skip
                finally:  # also what a batch stopped by a conflict or a cancel did
                    by_state = dict(self.feed.status.moved_by_state)
                    n = self._account(before)
                    by_state[str(state)] = by_state.get(str(state), 0) + n
                    self.feed.update(moved_by_state=by_state)
                moved += len(jobs)
        return moved

    def _settle_total(self) -> None:
        """At the end of copying the total is what moved, was skipped or failed."""
        st = self.feed.status
        done = st.migrated_jobs + st.skipped_jobs + st.failed_jobs
        if done < st.total_jobs:
            self.feed.note(
                f"{st.total_jobs - done} jobs left the source during copying without moving "
                "(consumed there, or expired)"
            )
        self.feed.update(total_jobs=done)

"""``StatusFeed``: the status of one migration run, changed in place and fanned out.

Every change is stamped (``updated_at``), the progress figure is derived from the
phase (and, while copying, from the jobs done so far over the total) and never goes
back within a run, nor across a resume (:meth:`StatusFeed.carry`); the copy rate
(jobs/s) and the ETA come from this run's copying. Each watcher gets every change
as its own snapshot: none is coalesced away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import msgspec

from queuestore.errors import MigrationError
from queuestore.migration._models import MigrationPhase, MigrationStatus

__all__ = ["StatusFeed"]

log = logging.getLogger("queuestore.migration")
_STATUS_ENC = msgspec.msgpack.Encoder()
_STATUS_DEC = msgspec.msgpack.Decoder(MigrationStatus)
_P = MigrationPhase
#: the progress figure of each phase outside copying (percent)
_PHASE_PROGRESS = {_P.DRAINING: 2.0, _P.VERIFYING: 92.0, _P.SWITCHING: 98.0, _P.COMPLETED: 100.0}


class StatusFeed:
    """The status of one migration run and the watchers of its changes.

    Attributes:
        status: the live status (change it through :meth:`update` and friends).
        finished: the run has ended (after :meth:`finish`).
        done: set when the run has ended.
        copy_start: when copying began (``time.monotonic()``), for the rate and the ETA.
        copy_base: the jobs done when copying began (carried from an earlier run).
    """

    def __init__(self, status: MigrationStatus) -> None:
        self.status = status
        self.finished = False
        self.done = anyio.Event()
        self.copy_start = 0.0
        self.copy_base = 0
        self._changed = anyio.Event()
        self._subscribers: list[list[MigrationStatus]] = []

    @classmethod
    def ended(cls, status: MigrationStatus) -> StatusFeed:
        """A feed of a run that has ended with ``status``."""
        feed = cls(status)
        feed.finished = True
        feed.done.set()
        return feed

    # -- reading ------------------------------------------------------------------------------
    def snapshot(self) -> MigrationStatus:
        """A deep copy of the current status."""
        return _STATUS_DEC.decode(_STATUS_ENC.encode(self.status))

    async def changed(self) -> None:
        """Wait for the next status change."""
        await self._changed.wait()

    async def watch(self) -> AsyncIterator[MigrationStatus]:
        """Every status change as a snapshot (none is coalesced away), ending with the final one."""
        buffer = [self.snapshot()]
        self._subscribers.append(buffer)
        try:
            while True:
                while buffer:
                    snap = buffer.pop(0)
                    yield snap
                    if snap.done and self.finished:
                        return
                if self.finished:
                    yield self.snapshot()
                    return
                await self.changed()
        finally:
            self._subscribers.remove(buffer)

    # -- changing -----------------------------------------------------------------------------
    def update(self, **fields: Any) -> None:
        """Set status fields, stamp the change, derive progress and ETA, and tell the watchers."""
        st = self.status
        for name, value in fields.items():
            setattr(st, name, value)
        st.updated_at = time.time()
        done = st.migrated_jobs + st.skipped_jobs + st.failed_jobs
        if st.phase is _P.COPYING:
            st.total_jobs = max(st.total_jobs, done)
            frac = done / st.total_jobs if st.total_jobs else 0.0  # nothing known yet: the start
            progress = round(5.0 + 85.0 * frac, 2)
            rate = (done - self.copy_base) / max(time.monotonic() - self.copy_start, 1e-6)
            st.rate = round(rate, 1)
            st.eta_seconds = round((st.total_jobs - done) / rate, 3) if rate > 0 else None
        else:
            progress = _PHASE_PROGRESS.get(st.phase, st.progress)
        if st.phase not in (_P.FAILED, _P.CANCELLED, _P.ROLLED_BACK):
            st.progress = max(st.progress, progress)  # never back within a run
        for buffer in self._subscribers:
            buffer.append(self.snapshot())
        self._changed.set()
        self._changed = anyio.Event()

    def carry(self, previous: MigrationStatus) -> None:
        """Go on from ``previous``, an earlier run of the same migration that did not complete:
        its counts, its total and its progress figure."""
        self.update(
            migrated_jobs=previous.migrated_jobs,
            skipped_jobs=previous.skipped_jobs,
            failed_jobs=previous.failed_jobs,
            total_jobs=previous.total_jobs,
            moved_by_state=dict(previous.moved_by_state),
            progress=previous.progress,
        )
        self.note(f"resuming from {previous.progress:g}% ({previous.migrated_jobs} jobs moved before)")

    def start_copying(self) -> None:
        """Enter phase copying (the total is set before), starting the rate clock."""
        st = self.status
        self.copy_start = time.monotonic()
        self.copy_base = st.migrated_jobs + st.skipped_jobs + st.failed_jobs
        self.phase(_P.COPYING)

    def phase(self, phase: MigrationPhase) -> None:
        """Enter ``phase`` (logged)."""
        log.info("migration %s of %s: %s", self.status.migration_id, self.status.queue, phase)
        copying = phase is _P.COPYING
        self.update(phase=phase, eta_seconds=self.status.eta_seconds if copying else None)

    def note(self, message: str) -> None:
        """Add a message to the status."""
        self.status.messages.append(message)
        self.update()

    def fail(self, err: MigrationError) -> None:
        """Enter phase failed with ``err`` (logged)."""
        log.warning("migration %s of %s failed: %s", self.status.migration_id, self.status.queue, err)
        self.update(phase=_P.FAILED, failed_phase=_P(err.phase), last_error=str(err), eta_seconds=None)

    def finish(self) -> None:
        """Mark the run ended (stamping ``finished_at``) and wake whoever waits on ``done``."""
        self.finished = True
        self.update(finished_at=time.time())
        self.done.set()

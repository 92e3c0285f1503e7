"""Which side a follower may lease from: never from where a run of another process moves jobs.

A follower (a process routing a queue over two sides X and Y that another process
migrates) must not consume a job that a running migration moved: that run verifies
what it moved before it completes. A run moves jobs into its target only; its record
lives in its source's store and says, once it sealed the source, where the jobs go
(``home``). So a follower may lease from a side S unless the record of the *other*
side names S as the home of a run that did not complete or get rolled back -- whatever
its migration id: a first run, a new run after a rollback, or a run back the other way.

The record is read before leasing, not in the same atomic step, and the gap is closed
by time: a run moves nothing during :data:`SEAL_GRACE` seconds after it sealed its
source (``queuestore.migration._runner``). A lease that returns within
:data:`SEAL_GRACE` of starting the read that allowed it was taken before the run
moved anything. A lease that took longer (a stalled process) is checked once more
against a fresh read; when a run into that side began meanwhile the job is given back
(handed back unseen, its attempt not counted, by a backend that can; otherwise nacked to
ready at once) and the follower drains the other side. Waits are cut into
steps shorter than :data:`SEAL_GRACE`, so a long-polling consumer re-reads between them.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import anyio
import msgspec

from queuestore._job import Job
from queuestore._models import DequeueOptions
from queuestore.abc import LeaseHandBack, MigrationSupport, QueueBackend
from queuestore.errors import QueueStoreError
from queuestore.migration._home import HomeDescriptor, describe, same_place
from queuestore.migration._models import MigrationPhase
from queuestore.migration._routing_parts import take_first

if TYPE_CHECKING:
    from queuestore.migration._routing import RoutingBackend

__all__ = ["SEAL_GRACE", "LeaseGuard", "runs_into"]

log = logging.getLogger("queuestore.migration")
#: seconds a run waits after sealing its source before it moves a job (followers' margin)
SEAL_GRACE = 0.5
_SETTLED = frozenset({MigrationPhase.COMPLETED, MigrationPhase.ROLLED_BACK})


def runs_into(fields: dict[str, str], side: HomeDescriptor) -> bool:
    """Whether the record ``fields`` is of a run that sealed its source and moves jobs into
    ``side`` and has not completed or been rolled back (failed and cancelled runs included:
    they are resumed)."""
    raw = fields.get("home")
    if not fields.get("mid") or not raw or fields.get("phase") in _SETTLED:
        return False
    try:
        return same_place(HomeDescriptor.decode(raw), side)
    except msgspec.DecodeError:
        return True  # an unreadable home: assume the worst


class LeaseGuard:
    """The leasing of a follower proxy (see the module docstring).

    Args:
        proxy: the follower's RoutingBackend (source X, target Y).
    """

    def __init__(self, proxy: RoutingBackend) -> None:
        self.proxy = proxy
        self._read_at: dict[int, float] = {}
        self._open: dict[int, bool] = {}

    def _other(self, side: QueueBackend) -> QueueBackend:
        p = self.proxy
        return p.target if side is p.source else p.source

    def _place(self, side: QueueBackend) -> HomeDescriptor:
        p = self.proxy
        return describe(p.source_config if side is p.source else p.target_config)

    async def _check(self, side: QueueBackend) -> bool:
        """Read the other side's record now: may ``side`` be leased from?

        Raises:
            BackendError: the store failed.
        """
        started = time.monotonic()
        other = self._other(side)
        free = True
        if isinstance(other, MigrationSupport) and not other.closed:
            fields = (await other.migration_record("read")).fields
            free = not runs_into(fields, self._place(side))
        self._read_at[id(side)], self._open[id(side)] = started, free
        return free

    async def allowed(self, side: QueueBackend) -> bool:
        """Whether ``side`` may be leased from, by a read at most half the grace old.

        Raises:
            BackendError: the store failed.
        """
        read_at = self._read_at.get(id(side))
        if read_at is None or time.monotonic() - read_at > SEAL_GRACE / 2:
            return await self._check(side)
        return self._open[id(side)]

    async def keep(self, side: QueueBackend, jobs: list[Job]) -> list[Job]:
        """The jobs just leased from ``side`` that may be kept; the others are given back.

        Raises:
            BackendError: the store failed.
        """
        if not jobs or time.monotonic() - self._read_at.get(id(side), 0.0) < SEAL_GRACE:
            return jobs
        if await self._check(side):
            return jobs
        log.warning(
            "queue %s: a migration into %s began while %d jobs were leased from it here: given back",
            self.proxy.queue, side.name, len(jobs),
        )  # fmt: skip
        if isinstance(side, LeaseHandBack):  # the attempt not counted
            await side.migration_give_back(jobs)
            return []
        for job in jobs:
            try:
                await side.nack(job, True, delay=0.0)
            except QueueStoreError as exc:  # its lease runs out: it comes back by itself
                log.warning("queue %s: giving job %s back failed: %s", self.proxy.queue, job.id, exc)
        return []

    async def take(self, options: DequeueOptions, count: int) -> list[Job]:
        """Lease up to ``count`` jobs from the sides that may be leased from, in the proxy's
        order (the source first; the target first after a rollback), waiting up to the
        options' timeout in steps shorter than the grace.

        Raises:
            InvalidJobError, BackendError: from the backends.
        """
        p = self.proxy
        order = [p.target, p.source] if p.rolled_back else [p.source, p.target]
        end = anyio.current_time() + options.timeout_seconds()
        while True:
            left = max(0.0, end - anyio.current_time())
            step = msgspec.structs.replace(options, timeout=min(left, SEAL_GRACE / 4), count=count)
            sides = [s for s in order if await self.allowed(s)]
            if sides:
                jobs, side = await take_first(sides[0] if len(sides) > 1 else None, sides[-1], step, count)
                jobs = await self.keep(side, jobs)
                if jobs:
                    if side is p.target:
                        p.delivered.update(j.id for j in jobs)
                    return jobs
            elif left > 0:
                await anyio.sleep(min(left, SEAL_GRACE / 4))
            if left <= 0:
                return []

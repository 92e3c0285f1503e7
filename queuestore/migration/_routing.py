"""The routing proxy that serves a queue while it migrates.

Installed with ``manager.switch_backend`` when the migration starts moving work
(draining or copying), so ``manager.get_backend(queue)`` keeps working for
producers and consumers:

* enqueue -> the target (new work never reaches the source again);
* dequeue -> the source first, then the target (old work first); the migration
  turns source leasing off once the source is copied, so that leases on the
  source run out and the migration can finish;
* ack / nack / extend_lease / move -> the backend holding the lease: the target
  for jobs leased from it through this proxy, else the source, and on
  JobNotFoundError the other one (ids are unique). A LeaseLostError is final. A
  lease token the answering backend did not issue (a redis-lists lease on a
  redis-streams side, or the reverse), or a guarded call on a job that neither
  side holds in flight while one of them stores it, is a LeaseLostError: the job
  is safe, that holder's lease is gone;
* ids leased and acked on the target are recorded for verification.

After a rollback that left jobs in flight on the target (``rolled_back``), the
roles turn: enqueue -> the source; dequeue -> the target's ready jobs first (without
waiting), then the source; acks still reach whichever side holds the lease; and the
proxy's maintenance loop runs ``sweeper`` (set by the rollback), which brings what
comes back to the target (nacked, expired leases) over to the source.

It is a plain ``QueueBackend`` for services: it has no connection of its own
(``open`` has nothing to connect) and offers no migration SPI; the migration layer
works on ``proxy.source`` and ``proxy.target`` directly.

After switching, the manager routes the queue straight to the target; this proxy
stays usable (consumers that kept a reference to it reach the target) until the
manager closes it. Closing the proxy never closes the backends behind it: the
manager owns them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

import anyio

from queuestore._args import JobRef, dequeue_options, job_ref
from queuestore._job import AllJobs, Job, JobState
from queuestore._models import (
    BackendCapabilities,
    BackendConfig,
    BackendStats,
    DequeueOptions,
    HealthStatus,
    IterOptions,
)
from queuestore.abc import QueueBackend
from queuestore.errors import (
    QueueStoreError,
    UnsupportedOperationError,
)
from queuestore.migration._protocol import spi
from queuestore.migration._routing_parts import (
    common_capabilities,
    lease_checked,
    on_either,
    peek_over,
    summed_stats,
    take_first,
    worse_health,
)

if TYPE_CHECKING:
    from queuestore.migration._lease_guard import LeaseGuard

__all__ = ["SWEEP_INTERVAL", "RoutingBackend"]

log = logging.getLogger("queuestore.migration")
T = TypeVar("T")
#: seconds between two sweeps of a rolled-back proxy's target
SWEEP_INTERVAL = 0.25


class RoutingBackend(QueueBackend):
    """A QueueBackend over a migration's source and target (see the module docstring).

    Attributes:
        source, target: the two backends (owned by the manager, not by this proxy).
        source_config, target_config: the configs they were made from.
        source_dequeue: whether dequeue still leases from the source.
        switched: the migration switched: everything goes to the target.
        delivered: ids leased from the target through this proxy.
        acked: ids acked on the target through this proxy.
        rolled_back: a rollback routed the queue home to the source (see the module docstring).
        sweeper: ``await sweeper()`` in the maintenance loop while ``rolled_back``.
        sweep_lock: held while jobs move back from the target (one mover at a time).
        lease_from_target: dequeue may lease from the target (a rollback turns it off while
            it decides whether anything is left there).
        follower: made by a process that follows a queue another process migrates
            (``queuestore.migration._follow``), not by a migration run.
        guard: a follower's leasing (``queuestore.migration._lease_guard``): which sides it
            may lease from, read from the migration records; it replaces the rules above.
    """

    def __init__(
        self,
        queue: str,
        source: QueueBackend,
        target: QueueBackend,
        *,
        source_config: BackendConfig,
        target_config: BackendConfig,
        migration_id: str,
    ) -> None:
        name = f"migrating({source.name}->{target.name})"
        super().__init__(BackendConfig(type="migration-routing", name=name, queue=queue))
        self.source, self.target, self.migration_id = source, target, migration_id
        self.source_config, self.target_config = source_config, target_config
        self.source_dequeue = True
        self.switched = False
        self.delivered: set[str] = set()
        self.acked: set[str] = set()
        self.rolled_back = False
        self.sweeper: Callable[[], Awaitable[object]] | None = None
        self.sweep_lock = anyio.Lock()
        self.lease_from_target = True
        self.follower = False
        self.guard: LeaseGuard | None = None
        self._target_takes = 0
        self._takes_done = anyio.Event()

    # -- helpers ------------------------------------------------------------------------
    def _note(self, jobs: Sequence[Job]) -> list[Job]:
        self.delivered.update(j.id for j in jobs)
        return list(jobs)

    @property
    def home(self) -> QueueBackend:
        """Where new work goes: the target, or the source after a rollback."""
        return self.source if self.rolled_back else self.target

    @property
    def away(self) -> QueueBackend:
        """The other side (the one new work does not go to)."""
        return self.target if self.rolled_back else self.source

    async def _routed(self, job: JobRef, call: Callable[[QueueBackend], Awaitable[T]]) -> T:
        """Run ``call`` on the backend that holds ``job``: known target leases go to the
        target first, other jobs to the source first; on JobNotFoundError the other side."""
        job_id, token = job_ref(job)
        self._check_open("route")
        if self.switched:
            return await lease_checked(job_id, token, call, self.target)
        first, second = (self.target, self.source) if job_id in self.delivered else (self.source, self.target)
        return await on_either(job_id, token, call, first, second)

    # -- core -----------------------------------------------------------------------------
    async def enqueue(self, job: Job) -> bool:
        """Enqueue on the target (the source after a rollback); False if the id is stored
        on either side, where the other side can look ids up.

        Raises:
            InvalidJobError, BackendError: from the target.
        """
        return (await self.enqueue_many([job]))[0]

    async def enqueue_many(self, jobs: Sequence[Job]) -> list[bool]:
        """Enqueue on the target (the source after a rollback); ids the other side still
        stores are refused (False).

        Raises:
            InvalidJobError, BackendError: from the backends.
        """
        self._check_open("enqueue")
        jobs = list(jobs)
        on_source: set[str] = set()
        if not self.switched and jobs:
            try:
                found = await spi(self.away).get_jobs([j.id for j in jobs])
                on_source = {j.id for j in found if j is not None}
            except UnsupportedOperationError:
                pass
        fresh = [j for j in jobs if j.id not in on_source]
        home = self.target if self.switched else self.home
        stored = iter(await home.enqueue_many(fresh) if fresh else [])
        return [False if j.id in on_source else next(stored) for j in jobs]

    async def dequeue(self, options: DequeueOptions | None = None) -> Job | None:
        """Lease from the source first (without waiting), then from the target; after a
        rollback, from the target first (without waiting), then the source.

        Raises:
            InvalidJobError, BackendError: from the backends.
        """
        jobs = await self._take(options, 1)
        return jobs[0] if jobs else None

    async def dequeue_many(self, options: DequeueOptions | None = None) -> list[Job]:
        """Lease up to ``count`` jobs, from the two sides in the order :meth:`dequeue` uses.

        Raises:
            InvalidJobError, BackendError: from the backends.
        """
        opts = dequeue_options(options, "dequeue_many")
        return await self._take(opts, opts.checked_count())

    async def _take(self, options: DequeueOptions | None, count: int) -> list[Job]:
        self._check_open("dequeue")
        opts = dequeue_options(options)
        if self.switched:
            quick, wait = None, self.target
        elif self.guard is not None:
            return await self.guard.take(opts, count)
        elif not self.lease_from_target:
            quick, wait = None, self.source
        elif self.rolled_back:
            quick, wait = self.target, self.source
        else:
            quick, wait = (self.source if self.source_dequeue else None), self.target
        if self.target not in (quick, wait):
            return (await take_first(quick, wait, opts, count))[0]
        self._target_takes += 1
        try:
            jobs, side = await take_first(quick, wait, opts, count)
        finally:
            self._target_takes -= 1
            if self._target_takes == 0:
                self._takes_done.set()
        return self._note(jobs) if side is self.target else jobs

    async def stop_target_leasing(self) -> None:
        """Lease from the source only from now on (until ``lease_from_target`` is set again),
        and wait until no dequeue through this proxy is still leasing from the target (at
        most its own wait)."""
        self.lease_from_target = False
        if self._target_takes:
            self._takes_done = anyio.Event()
            await self._takes_done.wait()

    async def ack(self, job: JobRef) -> None:
        """Ack on the backend holding the lease (see the module docstring).

        Raises:
            JobNotFoundError, LeaseLostError, BackendError.
        """

        async def call(b: QueueBackend) -> None:
            await b.ack(job)
            if b is self.target:
                self.acked.add(job_ref(job)[0])

        await self._routed(job, call)

    async def ack_many(self, jobs: Sequence[JobRef]) -> list[bool]:
        """Ack each job where its lease is; False for an unknown or stale one.

        Raises:
            InvalidJobError, BackendError.
        """
        self._check_open("ack")
        refs = list(jobs)
        out = [False] * len(refs)
        on_target = [i for i, j in enumerate(refs) if self.switched or job_ref(j)[0] in self.delivered]
        rest = [i for i in range(len(refs)) if i not in set(on_target)]
        if rest:
            for i, ok in zip(rest, await self.source.ack_many([refs[i] for i in rest]), strict=True):
                out[i] = ok
            on_target += [i for i in rest if not out[i]]
        if on_target:
            for i, ok in zip(
                on_target, await self.target.ack_many([refs[i] for i in on_target]), strict=True
            ):
                out[i] = ok
                if ok:
                    self.acked.add(job_ref(refs[i])[0])
        return out

    async def nack(
        self,
        job: JobRef,
        requeue: bool = True,
        *,
        delay: float | timedelta | None = None,
        error: str | None = None,
    ) -> None:
        """Nack on the backend holding the lease (a source job nacked back is swept over).

        Raises:
            JobNotFoundError, LeaseLostError, InvalidJobError, BackendError.
        """
        if delay is None:  # the backend's retry_backoff applies
            await self._routed(job, lambda b: b.nack(job, requeue, error=error))
        else:
            await self._routed(job, lambda b: b.nack(job, requeue, delay=delay, error=error))

    async def extend_lease(self, job: JobRef, seconds: float | timedelta) -> float:
        """Extend the lease on the backend holding it.

        Raises:
            JobNotFoundError, LeaseLostError, InvalidJobError, BackendError.
        """
        return await self._routed(job, lambda b: b.extend_lease(job, seconds))

    async def move(self, job: JobRef, target_queue: str) -> None:
        """Move the job from whichever backend holds it.

        Raises:
            JobNotFoundError, LeaseLostError, InvalidJobError, BackendError.
        """
        await self._routed(job, lambda b: b.move(job, target_queue))

    # -- operator -------------------------------------------------------------------------------
    @property
    def _sides(self) -> list[QueueBackend]:
        return [self.target] if self.switched else [self.source, self.target]

    async def redrive(self, job_ids: Sequence[str] | AllJobs, *, to_queue: str | None = None) -> int:
        """Redrive on both sides (the target alone after switching); the sum of their counts.

        Raises:
            InvalidJobError, BackendError: from the backends.
        """
        self._check_open("redrive")
        return sum([await b.redrive(job_ids, to_queue=to_queue) for b in self._sides])

    async def purge(self, state: JobState, job_ids: Sequence[str] | AllJobs) -> int:
        """Purge on both sides (the target alone after switching); the sum of their counts.

        Raises:
            InvalidJobError, BackendError: from the backends.
        """
        self._check_open("purge")
        return sum([await b.purge(state, job_ids) for b in self._sides])

    async def delete(self, job_id: str) -> bool:
        """Delete the job on both sides (the target alone after switching); True if either held it.

        Raises:
            InvalidJobError, BackendError: from the backends.
        """
        self._check_open("delete")
        return any([await b.delete(job_id) for b in self._sides])

    # -- reading ----------------------------------------------------------------------------
    async def length(self) -> int:
        """Waiting jobs on both sides (a batch being moved may be counted on neither)."""
        if self.switched:
            return await self.target.length()
        return await self.source.length() + await self.target.length()

    async def peek(self, offset: int = 0) -> Job | None:
        """The ready job at ``offset``, in dequeue order over both sides.

        Raises:
            InvalidJobError: offset < 0.
        """
        if self.switched:
            return await self.target.peek(offset)
        if self.rolled_back:
            return await peek_over([self.target, self.source], offset)
        return await peek_over([self.source, self.target] if self.source_dequeue else [self.target], offset)

    def iter(self, options: IterOptions | None = None) -> AsyncIterator[Job]:
        """The source's jobs, then the target's (paged on each side)."""
        return self._iter(options)

    async def _iter(self, options: IterOptions | None) -> AsyncIterator[Job]:
        backends = [self.target] if self.switched else [self.source, self.target]
        for backend in backends:
            async for job in backend.iter(options):
                yield job

    def capabilities(self) -> BackendCapabilities:
        """What both backends support (the target's alone after switching)."""
        if self.switched:
            return self.target.capabilities()
        return common_capabilities(self.source.capabilities(), self.target.capabilities())

    async def stats(self) -> BackendStats:
        """Depths summed over both sides (names this proxy as the backend).

        Raises:
            BackendError: a backend failed.
        """
        sides = [self.target] if self.switched else [self.target, self.source]
        return summed_stats(self.name, self.queue, [await b.stats() for b in sides])

    async def health(self) -> HealthStatus:
        """The worse of the two backends' health (the target's after switching). Never raises."""
        if self.switched:
            return await self.target.health()
        return worse_health(await self.source.health(), await self.target.health())

    async def run_maintenance(self) -> None:
        """After a rollback, run ``sweeper`` every ``SWEEP_INTERVAL`` seconds (its failures are
        logged and retried); otherwise nothing: the manager maintains both backends themselves."""
        while True:
            if self.rolled_back and self.sweeper is not None and not self.switched:
                try:
                    await self.sweeper()
                except QueueStoreError as exc:
                    log.warning("sweeping %s back to %s failed: %s", self.target.name, self.source.name, exc)
            await anyio.sleep(SWEEP_INTERVAL)

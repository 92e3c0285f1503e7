"""One migration run: the phases, the deadline, cancellation and the status it keeps.

``validation -> (draining) -> copying -> verifying -> switching -> completed``, or
``failed`` / ``cancelled``. The whole run is under one deadline (``options.timeout``):
hitting it fails the run with a MigrationError naming the phase it was in. After a
failure, a timeout or a cancel the routing proxy stays installed and serves both
sides again (dequeue leases from the source first, then the target), and what the
holding area holds is finished (shielded, bounded), so every job is in the source
or the target exactly once and a new start resumes.

The copying phase itself, with its counts, is ``queuestore.migration._copying``.
"""

from __future__ import annotations

import time

import anyio

from queuestore._manager import BackendManager
from queuestore.abc import MigrationSupport, QueueBackend
from queuestore.errors import BackendError, MigrationError, MigrationInProgressError, QueueStoreError
from queuestore.migration._copying import Copier
from queuestore.migration._lease_guard import SEAL_GRACE
from queuestore.migration._models import MigrationOptions, MigrationPhase, MigrationStatus
from queuestore.migration._protocol import Ledger, StepHook, spi
from queuestore.migration._record import RecordKeeper, rehome
from queuestore.migration._resolve import Endpoints, resolve
from queuestore.migration._routing import RoutingBackend
from queuestore.migration._status_feed import StatusFeed
from queuestore.migration._verify import verify

__all__ = ["CLEANUP_LIMIT", "MigrationRun"]

#: how long the shielded clean-up after a failure/cancel may take (seconds)
CLEANUP_LIMIT = 10.0
_P = MigrationPhase
_RESUMABLE = frozenset({_P.FAILED, _P.CANCELLED})


class MigrationRun:
    """Runs one migration of one queue; its status is kept by ``feed`` (see the module docstring).

    Args:
        manager: the BackendManager serving the queue.
        queue: the queue to migrate.
        options: how (checked by :meth:`prepare`).
        hook: ``await hook(step, batch)`` after each protocol step (tests, instrumentation).
    """

    def __init__(
        self, manager: BackendManager, queue: str, options: MigrationOptions, *, hook: StepHook | None = None
    ) -> None:
        self.manager, self.queue, self.options, self.hook = manager, queue, options, hook
        self.feed = StatusFeed(
            MigrationStatus(
                migration_id="",
                queue=queue,
                source_backend=options.source_backend,
                target_backend=options.target_backend,
                dry_run=options.dry_run,
            )
        )
        self.ledger = Ledger()
        self.copier = Copier(self.feed, self.ledger, options, hook)
        self.cancel_scope = anyio.CancelScope()
        self.endpoints: Endpoints | None = None
        self.target: QueueBackend | None = None
        self.proxy: RoutingBackend | None = None
        self.keeper: RecordKeeper | None = None

    # -- entry points ---------------------------------------------------------------------------
    def start(self, previous: MigrationStatus | None = None) -> MigrationStatus:
        """Claim the queue on the BackendManager, then :meth:`prepare`; return the first snapshot.

        The claim is given back when :meth:`execute` ends, or here when preparing fails.
        ``previous``, the status of an earlier run that did not complete, is carried on
        (counts, progress) when it is the same migration: a resumed run goes on from there.

        Raises:
            MigrationInProgressError: another migration of the queue is running on the same
                BackendManager (MIGRATION_IN_PROGRESS; checked before anything else).
            ConfigurationError: bad options (the field is named).
            MigrationError: unknown queue/backend, or the source does not match (phase validation).
        """
        other = self.manager.begin_migration(self.queue, self)
        if isinstance(other, MigrationRun):
            raise MigrationInProgressError(
                str(other.feed.status.phase),
                f"queue {self.queue!r} is already migrating ({other.feed.status.migration_id})",
            )
        try:
            first = self.prepare()
        except BaseException:
            self.manager.end_migration(self.queue, self)
            raise
        if (
            previous is not None
            and previous.migration_id == first.migration_id
            and previous.phase in _RESUMABLE
        ):
            self.feed.carry(previous)
            first = self.feed.snapshot()
        return first

    async def claim(self) -> MigrationStatus:
        """Claim the queue's migration record in the source's store (after :meth:`start`; not
        for a dry run); return the snapshot, carried on from the record when an earlier run of
        the same migration left counts there. Gives the BackendManager claim back on failure.

        Raises:
            MigrationInProgressError: another process or manager owns the migration (named).
            MigrationError: the record is of another unfinished migration (phase validation).
            BackendError: the store failed.
        """
        ep = self.endpoints
        if ep is None or self.options.dry_run:
            return self.feed.snapshot()
        try:
            keeper = RecordKeeper(spi(ep.source), self.queue, ep.migration_id, self.options, ep.target_config)
            earlier = await keeper.claim(self.feed.snapshot())
        except BaseException:
            self.manager.end_migration(self.queue, self)
            raise
        self.keeper = keeper
        done = self.feed.status.migrated_jobs + self.feed.status.skipped_jobs
        if earlier is not None and earlier.migrated_jobs + earlier.skipped_jobs > done:
            self.feed.carry(earlier)
        try:
            await keeper.sync(self.feed.status)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await keeper.release(self.feed.status)
            self.manager.end_migration(self.queue, self)
            raise
        return self.feed.snapshot()

    def prepare(self) -> MigrationStatus:
        """Check the options and resolve source and target (no I/O); return the first snapshot.

        Raises:
            ConfigurationError: bad options (the field is named).
            MigrationError: unknown queue/backend, or the source does not match (phase validation).
        """
        self.options.check()
        self.endpoints = ep = resolve(self.manager, self.queue, self.options)
        self.feed.status.migration_id = ep.migration_id
        self.feed.status.source_backend = ep.source_config.name or ep.source_config.type
        self.feed.status.target_backend = ep.target_config.name or ep.target_config.type
        return self.feed.snapshot()

    async def execute(self) -> MigrationStatus:
        """Run to the end (or to the deadline, or until cancelled); return the final status.

        Gives back the claim :meth:`start` took. Failures are reported in the status
        (phase failed, ``last_error``), not raised.
        """
        if self.endpoints is None:
            self.prepare()
        timeout = self.options.timeout_seconds()
        try:
            with self.cancel_scope:
                with anyio.CancelScope(deadline=anyio.current_time() + timeout) as deadline:
                    try:
                        await self._run_owned()
                    except MigrationError as exc:
                        self.feed.fail(exc)
                    except (QueueStoreError, OSError) as exc:
                        self.feed.fail(MigrationError(self.feed.status.phase, f"{type(exc).__name__}: {exc}"))
                if deadline.cancelled_caught and not self.feed.status.done:
                    self.feed.fail(
                        MigrationError(self.feed.status.phase, f"deadline of {timeout:g}s (timeout) reached")
                    )
        finally:
            if not self.feed.status.done:
                self.feed.update(phase=_P.CANCELLED, last_error="cancelled", eta_seconds=None)
            if self.feed.status.phase is not _P.COMPLETED:
                if self.proxy is not None:
                    self.proxy.source_dequeue = True  # every end state serves the queue
                await self._cleanup()
            self.manager.end_migration(self.queue, self)
            with anyio.CancelScope(shield=True):
                self.feed.update(finished_at=time.time())
                await self._release_record()
                if self.feed.status.phase is _P.COMPLETED:
                    await self._close_source()
            self.feed.finish()
        return self.feed.snapshot()

    async def _run_owned(self) -> None:
        """:meth:`_run`, with the record's owner lease renewed and the status written beside it."""
        if self.keeper is None:
            await self._run()
        else:
            await self.keeper.run_owned(self._run, self.feed.status)

    async def _release_record(self) -> None:
        if self.keeper is not None:
            await self.keeper.release_shielded(self.feed.status, CLEANUP_LIMIT)

    async def _cleanup(self) -> None:
        ep, target = self.endpoints, self.target
        if ep is None or target is None or self.options.dry_run:
            return
        with anyio.move_on_after(CLEANUP_LIMIT, shield=True):
            try:
                n = await self.copier.finish_held(ep.source, target, ep.migration_id)
                if n:
                    self.feed.note(f"finished {n} held jobs after stopping")
            except Exception as exc:
                self.feed.note(f"held jobs left for resume or rollback: {type(exc).__name__}: {exc}")

    # -- phases -----------------------------------------------------------------------------
    async def _run(self) -> None:
        ep = self.endpoints
        assert ep is not None
        self.feed.phase(_P.VALIDATION)
        if self.options.dry_run:
            await self._dry_run(ep)
            return
        target = (
            ep.proxy.target if ep.proxy is not None else await self.manager.open_backend(ep.target_config)
        )
        self.target = target
        try:
            if self.keeper is not None and isinstance(target, MigrationSupport):
                await rehome(target, self.queue, None, self.keeper.owner)  # it may have been a source
            await self._validate(ep.source, target)
        except BaseException:
            if ep.proxy is None:
                self.target = None
                with anyio.CancelScope(shield=True):
                    await self.manager.close_backend(target)
            raise
        proxy = self.proxy = ep.proxy or RoutingBackend(
            self.queue, ep.source, target, source_config=ep.source_config,
            target_config=ep.target_config, migration_id=ep.migration_id,
        )  # fmt: skip
        await proxy.open()
        async with proxy.sweep_lock:  # a new run takes over a rolled-back proxy, after its sweep
            proxy.switched = proxy.rolled_back = proxy.follower = False
            proxy.sweeper = proxy.guard = None  # a follower's proxy: this run leases as a run does
            proxy.lease_from_target = True
        if self.options.drain_first:
            self.feed.phase(_P.DRAINING)
            proxy.source_dequeue = False  # let the source's leases run out
            await self.manager.switch_backend(self.queue, proxy, ep.source_config)
            await self._seal()
            await self._wait_source_idle(ep.source)
        else:
            proxy.source_dequeue = True
        await self.manager.switch_backend(self.queue, proxy, ep.source_config)
        await self._seal()
        await self.copier.copy(ep.source, target, ep.migration_id, proxy)
        if self.options.verify_data:
            self.feed.phase(_P.VERIFYING)
            await self._step("verifying")
            res = await verify(target, self.ledger, proxy.acked, proxy.delivered)
            self.feed.note(
                f"verified {res.checked} jobs by {res.method}: {res.present} present, "
                f"{res.acked_on_target} consumed on the target, {len(res.missing)} missing, "
                f"{len(res.differ)} differ"
            )
            if not res.ok:
                self.feed.update(verified=False, failed_jobs=len(res.missing) + len(res.differ))
                raise MigrationError(
                    "verifying",
                    f"{len(res.missing)} jobs missing in the target (e.g. {res.missing[:3]}), "
                    f"{len(res.differ)} differ (e.g. {res.differ[:3]})",
                )
            self.feed.update(verified=True)
        self.feed.update(checksum=self.ledger.checksum)
        self.feed.phase(_P.SWITCHING)
        await self._step("switching")
        await self._switch(ep, target, proxy)
        if ep.home_note is not None:
            self.feed.note(ep.home_note)
        self.feed.phase(_P.COMPLETED)

    async def _seal(self) -> None:
        """Writes go to the target from now on, in every process (the source is sealed)."""
        if self.keeper is not None:
            await self.keeper.seal(self.feed.status)
            if not self.copier.not_before:  # a follower that read the record just before
                # leases from the target within SEAL_GRACE: nothing moves there before that
                self.copier.not_before = anyio.current_time() + SEAL_GRACE

    async def _step(self, name: str) -> None:
        if self.hook is not None:
            await self.hook(name, self.copier.batch)

    async def _validate(self, source: QueueBackend, target: QueueBackend) -> None:
        s, t = source.capabilities(), target.capabilities()
        for flag in ("replay", "prioritization", "persistence", "time_to_live"):
            if getattr(s, flag) and not getattr(t, flag):
                self.feed.note(f"target lacks {flag}")
        for side, backend in (("source", source), ("target", target)):
            health = await backend.health()
            if health.status == "unhealthy":
                raise MigrationError("validation", f"{side} {backend.name!r} is unhealthy: {health.message}")

    async def _dry_run(self, ep: Endpoints) -> None:
        cfg = ep.target_config
        try:
            self.manager.registry.validate(cfg.type, cfg)
        except QueueStoreError as exc:
            raise MigrationError("validation", f"target config: {exc}") from None
        st = await ep.source.stats()
        held = len(await spi(ep.source).migration_held(ep.migration_id, 10_000))
        would = {"ready": st.queue_depth, "delayed": st.delayed, "dead": st.dead, "held": held}
        self.feed.update(
            total_jobs=sum(would.values()), moved_by_state=would, in_flight_on_source=st.in_flight
        )
        self.feed.note(
            f"dry run: would move {sum(would.values())} jobs ({would}); {st.in_flight} in flight would "
            f"finish on the source first; nothing was changed"
        )
        self.feed.phase(_P.COMPLETED)

    async def _wait_source_idle(self, source: QueueBackend) -> None:
        while (n := (await source.stats()).in_flight) > 0:
            self.feed.update(in_flight_on_source=n)
            await anyio.sleep(0.1)
        self.feed.update(in_flight_on_source=0)

    async def _switch(self, ep: Endpoints, target: QueueBackend, proxy: RoutingBackend) -> None:
        proxy.switched = True
        await self.manager.switch_backend(self.queue, target, ep.target_config)

    async def _close_source(self) -> None:
        """After completion: close the source when nothing is in flight on it any more."""
        ep = self.endpoints
        if ep is None or self.options.dry_run or ep.source.closed:
            return
        try:
            if (await ep.source.stats()).in_flight == 0:
                await self.manager.close_backend(ep.source)
            else:
                self.feed.note("source kept open: jobs still in flight on it (closed with the manager)")
        except BackendError as exc:
            self.feed.note(f"source kept open: {exc}")

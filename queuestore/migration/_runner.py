"""One migration run: the phases, the deadline, cancellation and the status it keeps.

``validation -> (draining) -> copying -> verifying -> switching -> completed``, or
``failed`` / ``cancelled``. The whole run is under one deadline (``options.timeout``):
hitting it fails the run with a MigrationError naming the phase it was in. After a
failure or a cancel the routing proxy stays installed (both sides keep being served)
and what the holding area holds is finished (shielded, bounded), so every job is in
the source or the target exactly once and a new start resumes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import msgspec

from queuestore._manager import BackendManager
from queuestore.abc import QueueBackend
from queuestore.errors import BackendError, MigrationError, MigrationInProgressError, QueueStoreError
from queuestore.migration._models import MigrationOptions, MigrationPhase, MigrationStatus
from queuestore.migration._protocol import MOVABLE, Ledger, StepHook, finish_held, move_batch, spi, verify
from queuestore.migration._resolve import Endpoints, resolve
from queuestore.migration._routing import RoutingBackend

__all__ = ["CLEANUP_LIMIT", "MigrationRun"]

log = logging.getLogger("queuestore.migration")
#: how long the shielded clean-up after a failure/cancel may take (seconds)
CLEANUP_LIMIT = 10.0
_STATUS_ENC = msgspec.msgpack.Encoder()
_STATUS_DEC = msgspec.msgpack.Decoder(MigrationStatus)
_P = MigrationPhase


class MigrationRun:
    """Runs one migration of one queue and keeps its status (see the module docstring).

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
        self.status = MigrationStatus(
            migration_id="",
            queue=queue,
            source_backend=options.source_backend,
            target_backend=options.target_backend,
            dry_run=options.dry_run,
        )
        self.ledger = Ledger()
        self.cancel_scope = anyio.CancelScope()
        self.done = anyio.Event()
        self.finished = False
        self.endpoints: Endpoints | None = None
        self.target: QueueBackend | None = None
        self.proxy: RoutingBackend | None = None
        self._changed = anyio.Event()
        self._subscribers: list[list[MigrationStatus]] = []
        self._batch = 0
        self._copy_start = 0.0

    # -- status -----------------------------------------------------------------------------
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

    def _update(self, **fields: Any) -> None:
        st = self.status
        for name, value in fields.items():
            setattr(st, name, value)
        st.updated_at = time.time()
        if st.phase is _P.COPYING:
            st.total_jobs = max(st.total_jobs, st.migrated_jobs)
            frac = st.migrated_jobs / st.total_jobs if st.total_jobs else 1.0
            st.progress = round(5.0 + 85.0 * frac, 2)
            rate = st.migrated_jobs / max(time.monotonic() - self._copy_start, 1e-6)
            st.eta_seconds = (st.total_jobs - st.migrated_jobs) / rate if rate > 0 else None
        else:
            st.progress = {_P.DRAINING: 2.0, _P.VERIFYING: 92.0, _P.SWITCHING: 98.0, _P.COMPLETED: 100.0}.get(
                st.phase, st.progress
            )
        for buffer in self._subscribers:
            buffer.append(self.snapshot())
        self._changed.set()
        self._changed = anyio.Event()

    def _phase(self, phase: MigrationPhase) -> None:
        log.info("migration %s of %s: %s", self.status.migration_id, self.queue, phase)
        self._update(phase=phase, eta_seconds=None if phase is not _P.COPYING else self.status.eta_seconds)

    def _note(self, message: str) -> None:
        self.status.messages.append(message)
        self._update()

    def _fail(self, err: MigrationError) -> None:
        log.warning("migration %s of %s failed: %s", self.status.migration_id, self.queue, err)
        self._update(phase=_P.FAILED, failed_phase=_P(err.phase), last_error=str(err), eta_seconds=None)

    # -- entry points ---------------------------------------------------------------------------
    def start(self) -> MigrationStatus:
        """Claim the queue on the BackendManager, then :meth:`prepare`; return the first snapshot.

        The claim is given back when :meth:`execute` ends, or here when preparing fails.

        Raises:
            MigrationInProgressError: another migration of the queue is running on the same
                BackendManager (MIGRATION_IN_PROGRESS; checked before anything else).
            ConfigurationError: bad options (the field is named).
            MigrationError: unknown queue/backend, or the source does not match (phase validation).
        """
        other = self.manager.begin_migration(self.queue, self)
        if isinstance(other, MigrationRun):
            raise MigrationInProgressError(
                str(other.status.phase),
                f"queue {self.queue!r} is already migrating ({other.status.migration_id})",
            )
        try:
            return self.prepare()
        except BaseException:
            self.manager.end_migration(self.queue, self)
            raise

    def prepare(self) -> MigrationStatus:
        """Check the options and resolve source and target (no I/O); return the first snapshot.

        Raises:
            ConfigurationError: bad options (the field is named).
            MigrationError: unknown queue/backend, or the source does not match (phase validation).
        """
        self.options.check()
        self.endpoints = ep = resolve(self.manager, self.queue, self.options)
        self.status.migration_id = ep.migration_id
        self.status.source_backend = ep.source_config.name or ep.source_config.type
        self.status.target_backend = ep.target_config.name or ep.target_config.type
        return self.snapshot()

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
                        await self._run()
                    except MigrationError as exc:
                        self._fail(exc)
                    except (QueueStoreError, OSError) as exc:
                        self._fail(MigrationError(self.status.phase, f"{type(exc).__name__}: {exc}"))
                if deadline.cancelled_caught and not self.status.done:
                    self._fail(
                        MigrationError(self.status.phase, f"deadline of {timeout:g}s (timeout) reached")
                    )
        finally:
            if not self.status.done:
                self._update(phase=_P.CANCELLED, last_error="cancelled", eta_seconds=None)
            if self.status.phase is not _P.COMPLETED:
                await self._cleanup()
            self.finished = True
            self.manager.end_migration(self.queue, self)
            self._update(finished_at=time.time())
            self.done.set()
        return self.snapshot()

    async def _cleanup(self) -> None:
        ep, target = self.endpoints, self.target
        if ep is None or target is None or self.options.dry_run:
            return
        with anyio.move_on_after(CLEANUP_LIMIT, shield=True):
            try:
                n = await finish_held(
                    ep.source, target, ep.migration_id, self.options.batch_size, self.ledger,
                    on_corrupt=self.options.on_corrupt,
                )  # fmt: skip
                if n:
                    self._note(f"finished {n} held jobs after stopping")
            except Exception as exc:
                self._note(f"held jobs left for resume or rollback: {type(exc).__name__}: {exc}")

    # -- phases -----------------------------------------------------------------------------
    async def _run(self) -> None:
        ep = self.endpoints
        assert ep is not None
        self._phase(_P.VALIDATION)
        if self.options.dry_run:
            await self._dry_run(ep)
            return
        target = (
            ep.proxy.target if ep.proxy is not None else await self.manager.open_backend(ep.target_config)
        )
        self.target = target
        try:
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
        proxy.switched = False
        if self.options.drain_first:
            self._phase(_P.DRAINING)
            proxy.source_dequeue = False  # let the source's leases run out
            await self.manager.switch_backend(self.queue, proxy, ep.source_config)
            await self._wait_source_idle(ep.source)
        else:
            proxy.source_dequeue = True
        self._copy_start = time.monotonic()
        self._phase(_P.COPYING)
        await self.manager.switch_backend(self.queue, proxy, ep.source_config)
        await self._copy(ep, target, proxy)
        if self.options.verify_data:
            self._phase(_P.VERIFYING)
            await self._step("verifying")
            res = await verify(target, self.ledger, proxy.acked, proxy.delivered)
            self._note(
                f"verified {res.checked} jobs by {res.method}: {res.present} present, "
                f"{res.acked_on_target} consumed on the target, {len(res.missing)} missing, "
                f"{len(res.differ)} differ"
            )
            if not res.ok:
                self._update(verified=False, failed_jobs=len(res.missing) + len(res.differ))
                raise MigrationError(
                    "verifying",
                    f"{len(res.missing)} jobs missing in the target (e.g. {res.missing[:3]}), "
                    f"{len(res.differ)} differ (e.g. {res.differ[:3]})",
                )
            self._update(verified=True)
        self._update(checksum=self.ledger.checksum)
        self._phase(_P.SWITCHING)
        await self._step("switching")
        await self._switch(ep, target, proxy)
        self._phase(_P.COMPLETED)

    async def _step(self, name: str) -> None:
        if self.hook is not None:
            await self.hook(name, self._batch)

    async def _validate(self, source: QueueBackend, target: QueueBackend) -> None:
        s, t = source.capabilities(), target.capabilities()
        for flag in ("replay", "prioritization", "persistence", "time_to_live"):
            if getattr(s, flag) and not getattr(t, flag):
                self._note(f"target lacks {flag}")
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
        self._update(total_jobs=sum(would.values()), moved_by_state=would, in_flight_on_source=st.in_flight)
        self._note(
            f"dry run: would move {sum(would.values())} jobs ({would}); {st.in_flight} in flight would "
            f"finish on the source first; nothing was changed"
        )
        self._phase(_P.COMPLETED)

    async def _wait_source_idle(self, source: QueueBackend) -> None:
        while (n := (await source.stats()).in_flight) > 0:
            self._update(in_flight_on_source=n)
            await anyio.sleep(0.1)
        self._update(in_flight_on_source=0)

    async def _copy(self, ep: Endpoints, target: QueueBackend, proxy: RoutingBackend) -> None:
        src, mid = ep.source, ep.migration_id
        resumed = await finish_held(src, target, mid, self.options.batch_size, self.ledger,
                                    on_corrupt=self.options.on_corrupt)  # fmt: skip
        if resumed:
            self._note(f"resumed: finished {resumed} jobs held by an earlier run")
        st = await src.stats()
        self._update(
            total_jobs=resumed + st.queue_depth + st.delayed + st.dead,
            migrated_jobs=resumed,
            failed_jobs=self.ledger.corrupt,
        )
        await self._pass(src, target, mid)
        proxy.source_dequeue = False  # from now on the source's leases only run out
        pause = 0.02
        while True:
            in_flight = (await src.stats()).in_flight
            self._update(in_flight_on_source=in_flight)
            moved = await self._pass(src, target, mid)
            if moved == 0 and in_flight == 0:
                break
            if moved == 0:
                await anyio.sleep(pause)
                pause = min(pause * 2, 0.5)
        unreadable = await spi(src).migration_restore(mid)
        if unreadable:
            raise MigrationError(
                "copying",
                f"{unreadable} entries held by {mid} could not be decoded by {src.name!r} "
                "(they were put back on the source; repair or remove them, then resume)",
            )

    async def _pass(self, src: QueueBackend, target: QueueBackend, mid: str) -> int:
        moved = 0
        for state in MOVABLE:
            while jobs := await spi(src).migration_hold(mid, state, self.options.batch_size):
                self._batch += 1
                n = await move_batch(src, target, mid, jobs, self.ledger, on_corrupt=self.options.on_corrupt,
                                     hook=self.hook, batch_no=self._batch)  # fmt: skip
                moved += len(jobs)
                by_state = dict(self.status.moved_by_state)
                by_state[str(state)] = by_state.get(str(state), 0) + len(jobs)
                self._update(
                    migrated_jobs=self.status.migrated_jobs + n,
                    failed_jobs=self.ledger.corrupt,
                    moved_by_state=by_state,
                )
        return moved

    async def _switch(self, ep: Endpoints, target: QueueBackend, proxy: RoutingBackend) -> None:
        proxy.switched = True
        await self.manager.switch_backend(self.queue, target, ep.target_config)
        try:
            if (await ep.source.stats()).in_flight == 0:
                await self.manager.close_backend(ep.source)
            else:
                self._note("source kept open: jobs still in flight on it (closed with the manager)")
        except BackendError as exc:
            self._note(f"source kept open: {exc}")

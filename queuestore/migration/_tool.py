"""``MigrationTool``: plan a migration from measurements, or run one to the end."""

from __future__ import annotations

import time

from queuestore._codec import JobCodec
from queuestore._manager import BackendManager
from queuestore._models import BackendCapabilities, BackendConfig, IterOptions
from queuestore.errors import MigrationError, QueueStoreError
from queuestore.migration._models import MigrationOptions, MigrationPhase, MigrationPlan, MigrationStatus
from queuestore.migration._protocol import StepHook, spi
from queuestore.migration._resolve import resolve
from queuestore.migration._runner import MigrationRun

__all__ = ["MigrationTool"]

#: round trips per batch in the move (hold, import, release) -- the read we time is one
_TRIPS_PER_BATCH = 3
_LARGE_QUEUE = 10_000


class MigrationTool:
    """High-level migration utilities over a BackendManager.

    Args:
        manager: the BackendManager whose queues migrate.
        step_hook: ``await hook(step, batch)`` after each protocol step (instrumentation, tests).
    """

    def __init__(self, manager: BackendManager, *, step_hook: StepHook | None = None) -> None:
        self._manager = manager
        self._hook = step_hook

    async def plan_migration(self, queue: str, options: MigrationOptions) -> MigrationPlan:
        """Count what would move and estimate how long it takes, changing nothing in the source.

        The estimate comes from a measured sample: one page (``batch_size`` jobs) read
        from the source without holding anything, and those jobs encoded; a batch is
        taken as three such round trips plus encoding on both sides. The target is
        connected briefly to read its real capabilities.

        Raises:
            ConfigurationError: bad options.
            MigrationError: in phase "validation" (unknown queue/backend, wrong source).
            BackendError: the source failed.
        """
        options.check()
        ep = resolve(self._manager, queue, options)
        src, batch = ep.source, options.batch_size
        st = await src.stats()
        held = len(await spi(src).migration_held(ep.migration_id, 10_000))
        by_state = {
            "ready": st.queue_depth,
            "delayed": st.delayed,
            "dead": st.dead,
            "in_flight": st.in_flight,
        }
        count = st.queue_depth + st.delayed + st.dead + held
        codec = JobCodec()
        t0 = time.perf_counter()
        sample = []
        async for job in src.iter(IterOptions(count=batch)):
            sample.append(job)
            if len(sample) >= batch:
                break
        t_read = time.perf_counter() - t0
        t1 = time.perf_counter()
        for job in sample:
            codec.decode(codec.encode(job))
        t_code = time.perf_counter() - t1
        per_batch = _TRIPS_PER_BATCH * t_read + 2 * t_code * batch / max(len(sample), 1)
        batches = -(-count // batch)
        estimate = batches * per_batch + (0.1 if st.in_flight else 0.0)
        rate = count / estimate if estimate > 0 else float(batch) / max(per_batch, 1e-6)
        t_caps = await self._target_capabilities(ep.target_config)
        warnings, recs, reqs = [], [], []
        s_caps = src.capabilities()
        for flag in ("replay", "prioritization", "persistence", "time_to_live", "consumer_groups"):
            if getattr(s_caps, flag) and t_caps is not None and not getattr(t_caps, flag):
                warnings.append(f"target lacks {flag}")
        if t_caps is None:
            warnings.append("target could not be reached to read its capabilities")
        if ep.home_note is not None:
            warnings.append(ep.home_note)
        if st.in_flight:
            warnings.append(f"source has {st.in_flight} jobs in flight (they finish on the source first)")
        if held:
            warnings.append(
                f"{held} jobs are held by an interrupted run of {ep.migration_id}; they move first"
            )
        if count >= _LARGE_QUEUE and not options.drain_first:
            recs.append("large queue: consider drain_first=True so leases run out before copying")
        if batch < 500 and count >= _LARGE_QUEUE:
            recs.append("large queue: a batch_size of 500-1000 cuts round trips")
        if not options.verify_data:
            recs.append("enable verify_data for critical queues")
        recs.append("run plan_migration again close to the start; keep rollback_migration ready")
        reqs.append(f"target {ep.target_config.name or ep.target_config.type!r} reachable and writable")
        reqs.append("producers and consumers use manager.get_backend(queue) (the routing proxy)")
        if st.in_flight:
            reqs.append("in-flight jobs must be acked, nacked or expire before switching")
        return MigrationPlan(
            queue_name=queue,
            migration_id=ep.migration_id,
            source_backend=ep.source_config.name or ep.source_config.type,
            target_backend=ep.target_config.name or ep.target_config.type,
            job_count=count,
            jobs_by_state=by_state,
            held_jobs=held,
            estimated_duration=round(estimate, 4),
            sample_rate=round(rate, 1),
            batch_size=batch,
            requirements=reqs,
            warnings=warnings,
            recommendations=recs,
        )

    async def _target_capabilities(self, cfg: BackendConfig) -> BackendCapabilities | None:
        try:
            backend = await self._manager.registry.create(cfg.type, cfg)
        except QueueStoreError:
            return None
        try:
            return backend.capabilities()
        finally:
            await backend.aclose()

    async def execute_migration(
        self, queue: str, options: MigrationOptions, *, raise_on_failure: bool = True
    ) -> MigrationStatus:
        """Run a migration to the end in this task; return the final status.

        Raises:
            MigrationInProgressError: ``queue`` is migrating already.
            ConfigurationError: bad options.
            MigrationError: it failed (with ``raise_on_failure``; the phase is the one it hit).
        """
        run = MigrationRun(self._manager, queue, options, hook=self._hook)
        run.start()
        await run.claim()
        status = await run.execute()
        if raise_on_failure and status.phase is MigrationPhase.FAILED:
            raise MigrationError(str(status.failed_phase or "failed"), status.last_error or "failed")
        return status

    async def quick_migrate(self, queue: str, target: str) -> MigrationStatus:
        """Migrate ``queue`` to ``target`` (a backend name or type) with the default options:
        drain first, 30 minute deadline, batches of 100, verification on.

        Raises:
            MigrationInProgressError, ConfigurationError, MigrationError: as :meth:`execute_migration`.
        """
        return await self.execute_migration(queue, MigrationOptions(target_backend=target))

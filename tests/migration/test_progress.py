"""Real servers: progress known before copying, monotonic within a run and across a resume,
and the counts add up at the end."""

from __future__ import annotations

import anyio
import pytest

from queuestore import (
    DequeueOptions,
    Job,
)
from queuestore.migration import (
    MigrationManager,
    MigrationOptions,
    MigrationPhase,
    MigrationStatus,
    MigrationTool,
)
from queuestore.migration._routing import RoutingBackend

from .conftest import ConfigMaker
from .helpers import manager_for

pytestmark = pytest.mark.anyio


def _check_progress(seen: list[MigrationStatus]) -> None:
    figures = [s.progress for s in seen]
    assert figures == sorted(figures), figures
    copying = [s for s in seen if s.phase is MigrationPhase.COPYING]
    assert copying
    assert copying[0].total_jobs > 0


async def test_progress_is_monotonic_and_adds_up(redis_pair: ConfigMaker) -> None:
    queue, cfg = redis_pair("redis-lists", "redis-streams")
    manager = await manager_for(cfg)
    pause, consumed = anyio.Event(), anyio.Event()

    async def slow(step: str, batch: int) -> None:
        if step == "imported" and batch == 6:
            await consumed.wait()  # the source still has jobs ready while consumers take some
        if step == "imported" and not pause.is_set():
            await anyio.sleep(0.02)

    async with manager, MigrationManager(manager, step_hook=slow) as mm:
        b = manager.get_backend(queue)
        await b.enqueue_many([Job(payload=i) for i in range(400)])
        opts = MigrationOptions(target_backend="dst", batch_size=20, drain_first=False)
        await mm.start_migration(queue, opts)
        seen: list[MigrationStatus] = []

        async def watch() -> None:
            async for snap in mm.progress(queue):
                seen.append(snap)

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            while mm.get_migration_status(queue).migrated_jobs < 100:
                await anyio.sleep(0.01)
            # consumers take jobs from the source while it is copied
            handle = manager.get_backend(queue)
            taken = await handle.dequeue_many(DequeueOptions(count=30, timeout=0))
            assert len(taken) == 30
            assert isinstance(handle, RoutingBackend)
            assert not {j.id for j in taken} & handle.delivered  # all leased from the source
            for job in taken:
                await handle.ack(job)
            consumed.set()
            cancelled = await mm.cancel_migration(queue)
        _check_progress(seen)
        assert cancelled.phase is MigrationPhase.CANCELLED
        assert cancelled.rate is not None
        assert cancelled.rate > 0
        pause.set()
        resumed = await mm.resume(queue)
        assert resumed.progress >= cancelled.progress
        assert resumed.migrated_jobs == cancelled.migrated_jobs
        seen2 = [snap async for snap in mm.progress(queue)]
        final = await mm.wait(queue)
        assert final.phase is MigrationPhase.COMPLETED, final.last_error
        figures = [s.progress for s in seen2]
        assert figures == sorted(figures)
        assert figures[0] >= cancelled.progress
        assert final.migrated_jobs + final.skipped_jobs + final.failed_jobs == final.total_jobs
        assert final.migrated_jobs == 370
        assert final.progress == 100.0

        status = await MigrationTool(manager).execute_migration(
            queue, MigrationOptions(target_backend="src", batch_size=50, drain_first=False)
        )
        assert status.total_jobs == status.migrated_jobs == 370
        assert status.eta_seconds in (None, 0.0)


async def test_copying_with_no_total_yet_starts_at_the_start() -> None:
    """Entering copying before the total is known must not show the end of copying (90%),
    which the never-back rule would then hold until copying really got there."""
    from queuestore.migration._status_feed import StatusFeed

    feed = StatusFeed(MigrationStatus(queue="q", migration_id="m", source_backend="a", target_backend="b"))
    feed.update(phase=MigrationPhase.DRAINING)
    feed.update(phase=MigrationPhase.COPYING)
    assert feed.status.progress == 5.0
    feed.update(total_jobs=100, migrated_jobs=50)
    assert feed.status.progress == 47.5
    feed.update(migrated_jobs=100)
    assert feed.status.progress == 90.0

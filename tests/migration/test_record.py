"""The migration record in the source's store: one owner per queue across managers and OS
processes, the status readable from any of them, and a resume by another manager going on
from the counts the record holds."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest

from queuestore import BackendManager, Job, StorageConfig
from queuestore.errors import MigrationInProgressError
from queuestore.migration import MigrationManager, MigrationOptions, MigrationPhase

from .conftest import ConfigMaker
from .helpers import manager_for, memory_config, stored_ids, unique, write_yaml

pytestmark = pytest.mark.anyio

HELPER = Path(__file__).with_name("proc_helper.py")


@pytest.fixture(params=["memory", "redis-lists->redis-streams", "redis-streams->redis-lists"])
def setup(request: pytest.FixtureRequest) -> tuple[str, StorageConfig]:
    if request.param == "memory":
        queue = unique("mq")
        return queue, memory_config(queue)
    make: ConfigMaker = request.getfixturevalue("redis_pair")
    src, dst = request.param.split("->")
    return make(src, dst)


async def test_a_second_manager_is_refused_and_reads_the_status_from_the_store(
    setup: tuple[str, StorageConfig],
) -> None:
    queue, cfg = setup
    held, go = anyio.Event(), anyio.Event()

    async def hook(step: str, batch: int) -> None:
        if step == "held" and batch == 3:
            held.set()
            await go.wait()

    first, second = await manager_for(cfg), await manager_for(cfg)
    async with first, second, MigrationManager(first, step_hook=hook) as mm1, MigrationManager(second) as mm2:
        await first.get_backend(queue).enqueue_many([Job(payload=i) for i in range(300)])
        opts = MigrationOptions(target_backend="dst", batch_size=50, drain_first=False)
        started = await mm1.start_migration(queue, opts)
        with anyio.fail_after(20):
            await held.wait()
        with pytest.raises(MigrationInProgressError) as err:
            await mm2.start_migration(queue, opts)
        assert started.migration_id in str(err.value)
        assert "owned by" in str(err.value)
        assert err.value.code == "MIGRATION_IN_PROGRESS"
        await anyio.sleep(0.6)  # the run writes its status every 0.25 s
        seen = await mm2.read_migration_status(queue)
        assert seen.migration_id == started.migration_id
        assert seen.phase is MigrationPhase.COPYING
        assert seen.owner is not None
        assert str(os.getpid()) in seen.owner
        assert seen.owner_lease_left is not None
        assert seen.owner_lease_left > 0
        assert seen.migrated_jobs == 100
        assert seen.total_jobs == 300
        go.set()
        final = await mm1.wait(queue)
        assert final.phase is MigrationPhase.COMPLETED
        stored = await mm2.read_migration_status(queue)
        assert stored.phase is MigrationPhase.COMPLETED
        assert stored.owner is None
        assert stored.migrated_jobs == 300
        assert stored.progress == 100.0


async def test_a_resume_by_another_manager_goes_on_from_the_record(setup: tuple[str, StorageConfig]) -> None:
    queue, cfg = setup
    reached = anyio.Event()

    async def hook(step: str, batch: int) -> None:
        if step == "released" and batch == 3:
            reached.set()
            await anyio.sleep_forever()

    opts = MigrationOptions(target_backend="dst", batch_size=40, drain_first=False)
    first = await manager_for(cfg)
    async with first, MigrationManager(first, step_hook=hook) as mm1:
        jobs = [Job(payload=i) for i in range(400)]
        await first.get_backend(queue).enqueue_many(jobs)
        await mm1.start_migration(queue, opts)
        with anyio.fail_after(20):
            await reached.wait()
        cancelled = await mm1.cancel_migration(queue)
    assert cancelled.phase is MigrationPhase.CANCELLED
    assert cancelled.migrated_jobs == 120

    second = await manager_for(cfg)
    async with second, MigrationManager(second) as mm2:
        recorded = await mm2.read_migration_status(queue)
        assert recorded.phase is MigrationPhase.CANCELLED
        assert recorded.owner is None
        assert recorded.migrated_jobs == 120
        first_snap = await mm2.start_migration(queue, opts)
        assert first_snap.migrated_jobs == 120
        assert first_snap.progress >= cancelled.progress
        assert any("resuming from" in m for m in first_snap.messages)
        final = await mm2.wait(queue)
        assert final.phase is MigrationPhase.COMPLETED, final.last_error
        assert final.migrated_jobs + final.skipped_jobs == final.total_jobs == 400
        at_rest = await stored_ids(second.get_backend(queue))
        assert set(at_rest) == {j.id for j in jobs}
        assert max(at_rest.values()) == 1


async def test_another_os_process_is_refused_while_the_owner_runs(
    redis_pair: ConfigMaker, tmp_path: Path
) -> None:
    queue, cfg = redis_pair("redis-lists", "redis-streams")
    held, go = anyio.Event(), anyio.Event()

    async def hook(step: str, batch: int) -> None:
        if step == "released" and batch == 1:
            held.set()
            await go.wait()

    config_file = write_yaml(tmp_path / "storage.yaml", cfg)
    manager = await manager_for(cfg)
    async with manager, MigrationManager(manager, step_hook=hook) as mm:
        await manager.get_backend(queue).enqueue_many([Job(payload=i) for i in range(100)])
        started = await mm.start_migration(queue, MigrationOptions(target_backend="dst", batch_size=20))
        with anyio.fail_after(20):
            await held.wait()
        env = {**os.environ, "QS_CONFIG": str(config_file), "QS_QUEUE": queue}
        with anyio.fail_after(60):
            proc = await anyio.run_process([sys.executable, str(HELPER), "migrate"], env=env, check=False)
        out = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        assert out["error"] == "MIGRATION_IN_PROGRESS", proc.stderr.decode()[-2000:]
        assert started.migration_id in out["message"]
        assert f":{os.getpid()}:" in out["message"]  # the owner: this process
        go.set()
        assert (await mm.wait(queue)).phase is MigrationPhase.COMPLETED


async def test_a_run_after_a_rollback_starts_its_counts_afresh(setup: tuple[str, StorageConfig]) -> None:
    queue, cfg = setup
    reached = anyio.Event()

    async def hook(step: str, batch: int) -> None:
        if step == "released" and batch == 3:
            reached.set()
            await anyio.sleep_forever()

    opts = MigrationOptions(target_backend="dst", batch_size=40, drain_first=False)
    first = await manager_for(cfg)
    async with first, MigrationManager(first, step_hook=hook) as mm1:
        jobs = [Job(payload=i) for i in range(400)]
        await first.get_backend(queue).enqueue_many(jobs)
        await mm1.start_migration(queue, opts)
        with anyio.fail_after(20):
            await reached.wait()
        await mm1.cancel_migration(queue)
    second = await manager_for(cfg)  # another manager rolls it back
    async with second, MigrationManager(second) as mm2:
        rolled = await mm2.rollback_migration(queue, opts)
        assert rolled.phase is MigrationPhase.ROLLED_BACK
        assert rolled.progress == 100.0
    third = await manager_for(cfg)  # and a third migrates again: a new run, not a resume
    async with third, MigrationManager(third) as mm3:
        first_snap = await mm3.start_migration(queue, opts)
        assert first_snap.migrated_jobs == 0
        assert first_snap.progress < 100.0
        assert not any("resuming from" in m for m in first_snap.messages)
        final = await mm3.wait(queue)
        assert final.phase is MigrationPhase.COMPLETED, final.last_error
        assert final.migrated_jobs + final.skipped_jobs == final.total_jobs == 400
        at_rest = await stored_ids(third.get_backend(queue))
        assert set(at_rest) == {j.id for j in jobs}
        assert max(at_rest.values()) == 1


async def test_a_manager_that_followed_the_queue_to_its_new_home_reads_the_final_status(
    setup: tuple[str, StorageConfig],
) -> None:
    queue, cfg = setup
    first = await manager_for(cfg)
    second = await BackendManager.from_config(cfg, home_check_interval=0.05)
    async with first, second, MigrationManager(first) as mm1, MigrationManager(second) as mm2:
        await first.get_backend(queue).enqueue_many([Job(payload=i) for i in range(200)])
        opts = MigrationOptions(target_backend="dst", batch_size=50, drain_first=False)
        await mm1.start_migration(queue, opts)
        final = await mm1.wait(queue)
        assert final.phase is MigrationPhase.COMPLETED, final.last_error
        # the second manager follows: once the old home is empty it serves the queue from the
        # new one alone, whose store holds no record of this migration
        with anyio.fail_after(20):
            while second.get_backend(queue).name != "dst":
                await anyio.sleep(0.05)
        stored = await mm2.read_migration_status(queue)
        assert stored.migration_id == final.migration_id
        assert stored.phase is MigrationPhase.COMPLETED
        assert stored.migrated_jobs == 200
        assert stored.owner is None

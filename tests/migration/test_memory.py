"""The protocol, phases and routing on the memory backend (fast unit tests)."""

from __future__ import annotations

import time

import anyio
import pytest

from queuestore import (
    BackendManager,
    DequeueOptions,
    Job,
    JobState,
    MigrationError,
    MigrationInProgressError,
    MigrationNotFoundError,
    error_code,
)
from queuestore.migration import (
    MigrationManager,
    MigrationOptions,
    MigrationPhase,
    MigrationTool,
)
from queuestore.migration._lease_guard import SEAL_GRACE
from queuestore.migration._routing import RoutingBackend

from .helpers import manager_for, memory_config, open_plain, stored_ids, stored_jobs

pytestmark = pytest.mark.anyio

Q = "q"


async def _setup() -> tuple[BackendManager, dict[str, list[str]]]:
    manager = await manager_for(memory_config(Q))
    b = manager.get_backend(Q)
    ids: dict[str, list[str]] = {"ready": [], "delayed": [], "dead": [], "in_flight": []}
    for i in range(30):
        job = Job(payload={"i": i}, priority=i % 3, metadata={"k": str(i)}, tags=["t"])
        await b.enqueue(job)
        ids["ready"].append(job.id)
    for i in range(5):
        job = Job(payload={"d": i}).delayed(300 + i)
        await b.enqueue(job)
        ids["delayed"].append(job.id)
    for _ in range(3):
        got = await b.dequeue()
        assert got is not None
        await b.nack(got, requeue=False, error="boom")
        ids["ready"].remove(got.id)
        ids["dead"].append(got.id)
    got = await b.dequeue()
    assert got is not None
    ids["ready"].remove(got.id)
    ids["in_flight"].append(got.id)
    return manager, ids


async def test_execute_moves_every_state_and_switches() -> None:
    manager, ids = await _setup()
    async with manager:
        source = manager.get_backend(Q)
        order_before = [j.id async for j in source.iter()]
        tool = MigrationTool(manager)

        async def finish_lease() -> None:
            await anyio.sleep(0.2)
            await manager.get_backend(Q).ack(ids["in_flight"][0])  # through the routing proxy

        async with anyio.create_task_group() as tg:
            tg.start_soon(finish_lease)
            status = await tool.execute_migration(
                Q, MigrationOptions(target_backend="dst", drain_first=False)
            )
        assert status.phase is MigrationPhase.COMPLETED
        assert status.progress == 100.0
        assert status.verified is True
        assert status.migrated_jobs == 30 - 4 + 5 + 3
        assert status.moved_by_state == {"ready": 26, "delayed": 5, "dead": 3}
        target = manager.get_backend(Q)
        assert target.name == "dst"
        assert source.closed
        jobs = await stored_jobs(target)
        assert {i for i, j in jobs.items() if j.state is JobState.DELAYED} == set(ids["delayed"])
        assert {i for i, j in jobs.items() if j.state is JobState.DEAD} == set(ids["dead"])
        assert [j.id async for j in target.iter()] == order_before  # dequeue order (FIFO per priority) kept
        assert max((await stored_ids(target)).values()) == 1
        assert jobs[ids["dead"][0]].dead_reason == "boom"


async def test_progress_phases_and_in_progress_refusal() -> None:
    manager, ids = await _setup()
    async with manager, MigrationManager(manager) as mm:
        first = await mm.start_migration(Q, MigrationOptions(target_backend="dst", batch_size=4))
        assert first.phase is MigrationPhase.VALIDATION
        assert first.migration_id.startswith("mig-")
        with pytest.raises(MigrationInProgressError) as err:
            await mm.start_migration(Q, MigrationOptions(target_backend="dst"))
        assert error_code(err.value) == "MIGRATION_IN_PROGRESS"
        seen: list[MigrationPhase] = []

        async def consume() -> None:
            await anyio.sleep(0.1)
            await manager.get_backend(Q).ack(ids["in_flight"][0])

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            async for snap in mm.progress(Q):
                if not seen or seen[-1] != snap.phase:
                    seen.append(snap.phase)
        assert seen[0] is MigrationPhase.VALIDATION
        assert seen[-4:] == ["copying", "verifying", "switching", "completed"]
        assert "draining" in seen
        final = await mm.wait(Q)
        assert final.finished_at is not None
        assert mm.get_migration_status(Q).phase == "completed"
        mm.clear_status(Q)
        with pytest.raises(MigrationNotFoundError):
            mm.get_migration_status(Q)


async def test_timeout_fails_in_the_phase_it_hit_and_keeps_jobs() -> None:
    for drain, phase in ((True, "draining"), (False, "copying")):
        manager, ids = await _setup()  # the in-flight job is never acked
        async with manager:
            tool = MigrationTool(manager)
            opts = MigrationOptions(target_backend="dst", drain_first=drain, timeout=0.4)
            with pytest.raises(MigrationError) as err:
                await tool.execute_migration(Q, opts)
            assert err.value.phase == phase
            status = await tool.execute_migration(Q, opts, raise_on_failure=False)
            assert status.phase is MigrationPhase.FAILED
            assert status.failed_phase == phase
            assert status.last_error
            assert "deadline" in status.last_error
            proxy = manager.get_backend(Q)
            assert isinstance(proxy, RoutingBackend)
            everywhere = await stored_ids(proxy.source) + await stored_ids(proxy.target)
            expected = [i for v in ids.values() for i in v]
            assert sorted(everywhere) == sorted(expected)
            assert max(everywhere.values()) == 1


async def test_cancel_then_resume_and_rollback() -> None:
    manager, ids = await _setup()
    expected = sorted(i for v in ids.values() for i in v)

    async def slow(step: str, batch: int) -> None:
        if step == "imported":
            await anyio.sleep(0.05)

    async with manager, MigrationManager(manager, step_hook=slow) as mm:
        opts = MigrationOptions(target_backend="dst", drain_first=False, batch_size=2)
        await mm.start_migration(Q, opts)
        await anyio.sleep(SEAL_GRACE + 0.2)  # nothing moves during the grace after the seal
        st = await mm.cancel_migration(Q)
        assert st.phase is MigrationPhase.CANCELLED
        proxy = manager.get_backend(Q)
        assert isinstance(proxy, RoutingBackend)
        src, dst = await stored_ids(proxy.source), await stored_ids(proxy.target)
        assert 0 < sum(dst.values()) < len(expected)
        assert sorted(src + dst) == expected
        assert max((src + dst).values()) == 1
        assert await proxy.source.migration_held(st.migration_id) == []

        rolled = await mm.rollback_migration(Q)
        assert rolled.phase is MigrationPhase.ROLLED_BACK
        assert any("back from the target" in m for m in rolled.messages)
        source = manager.get_backend(Q)
        assert source is proxy.source
        assert sorted(await stored_ids(source)) == expected

        await mm.start_migration(Q, opts)  # a fresh start after the rollback
        await anyio.sleep(0.15)
        await mm.cancel_migration(Q)
        await manager.get_backend(Q).ack(ids["in_flight"][0])
        await mm.resume(Q)
        final = await mm.wait(Q)
        assert final.phase is MigrationPhase.COMPLETED, final.last_error
        target = manager.get_backend(Q)
        assert sorted(await stored_ids(target)) == sorted(set(expected) - set(ids["in_flight"]))


async def test_dry_run_changes_nothing() -> None:
    manager, _ids = await _setup()
    async with manager:
        source = manager.get_backend(Q)
        before = {j.id: j async for j in source.iter()}
        status = await MigrationTool(manager).execute_migration(
            Q, MigrationOptions(target_backend="dst", dry_run=True)
        )
        assert status.phase is MigrationPhase.COMPLETED
        assert status.dry_run
        assert status.total_jobs == 26 + 5 + 3
        assert status.in_flight_on_source == 1
        assert manager.get_backend(Q) is source
        assert {j.id: j async for j in source.iter()} == before
        dst = await open_plain(manager, "dst", Q)
        assert await stored_ids(dst) == {}


async def test_routing_proxy_during_a_migration() -> None:
    manager, ids = await _setup()
    gate = anyio.Event()

    async def hold_on(step: str, batch: int) -> None:
        if step == "held" and batch == 1:
            await gate.wait()

    async with manager, MigrationManager(manager, step_hook=hold_on) as mm:
        await mm.start_migration(Q, MigrationOptions(target_backend="dst", drain_first=False, batch_size=5))
        while not isinstance(manager.get_backend(Q), RoutingBackend):
            await anyio.sleep(0.01)
        proxy = manager.get_backend(Q)
        assert isinstance(proxy, RoutingBackend)
        new = Job(payload="new")
        assert await proxy.enqueue(new) is True
        assert await proxy.enqueue(Job(id=ids["ready"][-1], payload="dup")) is False  # still on the source
        assert (await proxy.target.get_jobs([new.id]))[0] is not None
        got = await proxy.dequeue(DequeueOptions(timeout=0))
        assert got is not None
        assert got.id != new.id
        await proxy.ack(got)
        await proxy.ack(ids["in_flight"][0])
        gate.set()
        final = await mm.wait(Q)
        assert final.phase is MigrationPhase.COMPLETED, final.last_error
        target = manager.get_backend(Q)
        left = await stored_ids(target)
        assert new.id in left
        assert got.id not in left


async def test_verification_catches_a_lost_job_and_corrupt_entries() -> None:
    manager, ids = await _setup()
    lost: list[str] = []

    async def lose(step: str, batch: int) -> None:
        proxy = manager.get_backend(Q)
        if step == "imported" and batch == 2 and isinstance(proxy, RoutingBackend):
            q = proxy.target._q  # type: ignore[attr-defined]
            job_id = next(iter(q.jobs))
            q.unplace(q.jobs[job_id])
            del q.jobs[job_id]
            lost.append(job_id)

    async with manager:
        await manager.get_backend(Q).ack(ids["in_flight"][0])
        tool = MigrationTool(manager, step_hook=lose)
        with pytest.raises(MigrationError) as err:
            await tool.execute_migration(Q, MigrationOptions(target_backend="dst", batch_size=5))
        assert err.value.phase == "verifying"
        assert lost[0] in str(err.value)

    manager, ids = await _setup()
    async with manager:
        source = manager.get_backend(Q)
        await source.ack(ids["in_flight"][0])
        bad = ids["ready"][3]
        source._q.jobs[bad].job.priority = 42  # type: ignore[attr-defined]
        tool = MigrationTool(manager)
        with pytest.raises(MigrationError) as err:
            await tool.execute_migration(Q, MigrationOptions(target_backend="dst"))
        assert err.value.phase == "copying"
        assert bad in str(err.value)
        status = await tool.execute_migration(
            Q, MigrationOptions(target_backend="dst", on_corrupt="dead_letter")
        )
        assert status.phase is MigrationPhase.COMPLETED
        assert status.failed_jobs == 1
        dead = (await manager.get_backend(Q).get_jobs([bad]))[0]
        assert dead is not None
        assert dead.state is JobState.DEAD
        assert "corrupt" in (dead.dead_reason or "")


async def test_plan_measures_and_warns() -> None:
    manager, _ids = await _setup()
    async with manager:
        t0 = time.perf_counter()
        plan = await MigrationTool(manager).plan_migration(
            Q, MigrationOptions(target_backend="dst", batch_size=10)
        )
        assert time.perf_counter() - t0 < 5
        assert plan.queue_name == Q
        assert plan.job_count == 26 + 5 + 3
        assert plan.jobs_by_state == {"ready": 26, "delayed": 5, "dead": 3, "in_flight": 1}
        assert plan.estimated_duration > 0
        assert plan.sample_rate > 0
        assert plan.batch_size == 10
        assert any("1 jobs in flight" in w for w in plan.warnings)
        assert plan.recommendations
        assert plan.requirements
        with pytest.raises(MigrationError) as err:
            await MigrationTool(manager).plan_migration(Q, MigrationOptions(target_backend="nope"))
        assert err.value.phase == "validation"

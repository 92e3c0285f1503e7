"""Real servers: every end state serves the queue; rollback keeps leases taken from the target
working and brings their jobs back; a foreign lease token is a lost lease."""

from __future__ import annotations

import anyio
import pytest

from queuestore import (
    BackendClosedError,
    DequeueOptions,
    Job,
    LeaseLostError,
    MigrationError,
    QueueBackend,
)
from queuestore.migration import (
    MigrationManager,
    MigrationOptions,
    MigrationPhase,
    MigrationTool,
)
from queuestore.migration._routing import RoutingBackend

from .conftest import ConfigMaker
from .helpers import manager_for, open_plain, stored_ids

pytestmark = pytest.mark.anyio


async def _ready_count(b: QueueBackend, limit: float = 5.0) -> int:
    got = 0
    with anyio.move_on_after(limit):
        while (jobs := await b.dequeue_many(DequeueOptions(count=50, timeout=0.1))) or got == 0:
            for job in jobs:
                await b.ack(job)
            got += len(jobs)
    return got


async def test_cancel_and_timeout_keep_the_queue_served(redis_pair: ConfigMaker) -> None:
    queue, cfg = redis_pair("redis-lists", "redis-streams")
    manager = await manager_for(cfg)
    async with manager, MigrationManager(manager) as mm:
        b = manager.get_backend(queue)
        await b.enqueue_many([Job(payload=i) for i in range(101)])
        lease = await b.dequeue(DequeueOptions(visibility_timeout=120))
        assert lease is not None
        await mm.start_migration(queue, MigrationOptions(target_backend="dst"))
        while mm.get_migration_status(queue).phase is not MigrationPhase.DRAINING:
            await anyio.sleep(0.01)
        cancelled = await mm.cancel_migration(queue)
        assert cancelled.phase is MigrationPhase.CANCELLED
        handle = manager.get_backend(queue)
        assert await handle.length() == 100
        assert await _ready_count(handle) == 100

        await handle.enqueue_many([Job(payload=i) for i in range(100)])
        with pytest.raises(MigrationError) as err:
            await MigrationTool(manager).execute_migration(
                queue, MigrationOptions(target_backend="dst", timeout=0.5)
            )
        assert err.value.phase == "draining"
        handle = manager.get_backend(queue)
        assert await handle.length() == 100
        assert await _ready_count(handle) == 100
        await handle.ack(lease)


async def test_stale_foreign_lease_is_lease_lost(redis_pair: ConfigMaker) -> None:
    queue, cfg = redis_pair("redis-lists", "redis-streams")
    manager = await manager_for(cfg)
    gate = anyio.Event()

    async def hold_on(step: str, batch: int) -> None:
        if step == "verifying":
            await gate.wait()

    async with manager, MigrationManager(manager, step_hook=hold_on) as mm:
        b = manager.get_backend(queue)
        await b.enqueue_many([Job(payload=i) for i in range(5)])
        stale = await b.dequeue(DequeueOptions(visibility_timeout=0.2))
        assert stale is not None
        await anyio.sleep(0.4)
        await mm.start_migration(queue, MigrationOptions(target_backend="dst", drain_first=False))
        while mm.get_migration_status(queue).phase is not MigrationPhase.VERIFYING:
            await anyio.sleep(0.01)
        proxy = manager.get_backend(queue)
        assert isinstance(proxy, RoutingBackend)
        assert (await proxy.target.get_jobs([stale.id]))[0] is not None  # type: ignore[attr-defined]
        with pytest.raises(LeaseLostError):
            await proxy.ack(stale)
        with pytest.raises(LeaseLostError):
            await proxy.nack(stale)
        gate.set()
        assert (await mm.wait(queue)).phase is MigrationPhase.COMPLETED
        assert stale.id in await stored_ids(manager.get_backend(queue))


@pytest.mark.parametrize("pair", [("redis-lists", "redis-streams"), ("redis-streams", "redis-lists")])
async def test_rollback_keeps_target_leases_working(redis_pair: ConfigMaker, pair: tuple[str, str]) -> None:
    queue, cfg = redis_pair(*pair)
    manager = await manager_for(cfg)
    gate = anyio.Event()

    async def hold_on(step: str, batch: int) -> None:
        if step == "verifying":
            await gate.wait()

    async with manager, MigrationManager(manager, step_hook=hold_on) as mm:
        b = manager.get_backend(queue)
        jobs = [Job(payload=i) for i in range(30)]
        await b.enqueue_many(jobs)
        await mm.start_migration(queue, MigrationOptions(target_backend="dst", drain_first=False))
        while mm.get_migration_status(queue).phase is not MigrationPhase.VERIFYING:
            await anyio.sleep(0.01)
        handle = manager.get_backend(queue)
        kept = await handle.dequeue(DequeueOptions(visibility_timeout=60))
        dropped = await handle.dequeue(DequeueOptions(visibility_timeout=0.5))
        assert kept is not None
        assert dropped is not None
        await mm.cancel_migration(queue)
        rolled = await mm.rollback_migration(queue)
        assert rolled.phase is MigrationPhase.ROLLED_BACK
        handle = manager.get_backend(queue)
        await handle.extend_lease(kept, 60)
        await handle.ack(kept)  # through the manager's handle, after the rollback
        assert any("2 jobs in flight on the target" in m for m in rolled.messages), rolled.messages
        assert rolled.total_jobs == rolled.migrated_jobs == 28
        assert rolled.moved_by_state == {"ready": 28}
        # the lease that runs out comes back to the source by itself
        with anyio.fail_after(10):
            while True:
                source = await open_plain(manager, "src", queue)
                here = await stored_ids(source)
                await manager.close_backend(source)
                if dropped.id in here:
                    break
                await anyio.sleep(0.1)
        assert set(here) == {j.id for j in jobs} - {kept.id}
        assert max(here.values()) == 1
        with pytest.raises(LeaseLostError):
            await manager.get_backend(queue).ack(dropped)
        final = await mm.rollback_migration(queue)
        assert final.phase is MigrationPhase.ROLLED_BACK
        assert not isinstance(manager.get_backend(queue), RoutingBackend)
        assert set(await stored_ids(manager.get_backend(queue))) == {j.id for j in jobs} - {kept.id}


async def test_rollback_under_consumers_strands_nothing(redis_pair: ConfigMaker) -> None:
    """Consumers keep leasing through the manager's handle while the rollback runs: half the
    leases are acked, half run out; in the end every job is acked once or back on the source."""
    queue, cfg = redis_pair("redis-streams", "redis-lists")
    manager = await manager_for(cfg)
    gate = anyio.Event()

    async def hold_on(step: str, batch: int) -> None:
        if step == "verifying":
            await gate.wait()

    acked: list[str] = []
    stop = anyio.Event()

    async def consumer(k: int) -> None:
        n = 0
        while not stop.is_set():
            handle = manager.get_backend(queue)
            try:
                job = await handle.dequeue(DequeueOptions(timeout=0.05, visibility_timeout=0.3))
            except BackendClosedError:
                continue  # a proxy closed under us: take the new handle
            if job is None:
                continue
            n += 1
            if n % 2 == k % 2:
                try:
                    await handle.ack(job)
                    acked.append(job.id)
                except LeaseLostError:
                    pass

    async with manager, MigrationManager(manager, step_hook=hold_on) as mm:
        jobs = [Job(payload=i) for i in range(60)]
        await manager.get_backend(queue).enqueue_many(jobs)
        await mm.start_migration(queue, MigrationOptions(target_backend="dst", drain_first=False))
        while mm.get_migration_status(queue).phase is not MigrationPhase.VERIFYING:
            await anyio.sleep(0.01)
        await mm.cancel_migration(queue)
        async with anyio.create_task_group() as tg:
            for k in range(3):
                tg.start_soon(consumer, k)
            await anyio.sleep(0.2)
            await mm.rollback_migration(queue)
            await anyio.sleep(0.5)
            stop.set()
        with anyio.fail_after(15):
            while isinstance(manager.get_backend(queue), RoutingBackend):
                await anyio.sleep(0.4)  # the last leases run out and are swept home
                await mm.rollback_migration(queue)
        assert len(acked) == len(set(acked))
        assert acked
        source = manager.get_backend(queue)
        with anyio.fail_after(10):
            while (await source.stats()).in_flight:  # leases taken from the source run out
                await anyio.sleep(0.1)
        here = await stored_ids(source)
        assert max(here.values(), default=1) == 1
        assert set(here) == {j.id for j in jobs} - set(acked)
        target = await open_plain(manager, "dst", queue)
        assert await stored_ids(target) == {}


async def test_migrating_again_after_a_rollback_with_target_leases(redis_pair: ConfigMaker) -> None:
    queue, cfg = redis_pair("redis-lists", "redis-streams")
    manager = await manager_for(cfg)
    gate = anyio.Event()

    async def hold_on(step: str, batch: int) -> None:
        if step == "verifying":
            await gate.wait()

    async with manager, MigrationManager(manager, step_hook=hold_on) as mm:
        jobs = [Job(payload=i) for i in range(40)]
        await manager.get_backend(queue).enqueue_many(jobs)
        opts = MigrationOptions(target_backend="dst", drain_first=False)
        await mm.start_migration(queue, opts)
        while mm.get_migration_status(queue).phase is not MigrationPhase.VERIFYING:
            await anyio.sleep(0.01)
        kept = await manager.get_backend(queue).dequeue(DequeueOptions(visibility_timeout=60))
        assert kept is not None
        await mm.cancel_migration(queue)
        rolled = await mm.rollback_migration(queue)
        assert isinstance(manager.get_backend(queue), RoutingBackend)
        assert rolled.migrated_jobs == 39
        gate.set()
        await mm.start_migration(queue, opts)  # forward again, over the rolled-back proxy
        await manager.get_backend(queue).ack(kept)
        final = await mm.wait(queue)
        assert final.phase is MigrationPhase.COMPLETED, final.last_error
        target = manager.get_backend(queue)
        assert not isinstance(target, RoutingBackend)
        at_rest = await stored_ids(target)
        assert set(at_rest) == {j.id for j in jobs} - {kept.id}
        assert max(at_rest.values()) == 1
        source = await open_plain(manager, "src", queue)
        assert await stored_ids(source) == {}

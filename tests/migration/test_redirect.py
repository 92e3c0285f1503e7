"""Seal and redirect: once a migration sends writes to the target, the source's storing scripts
answer "moved" in the same atomic step instead of storing, and a process that does not run
the migration -- its own BackendManager from the same config -- follows: the call that was
told, later calls, its consumers, and a process started with the old config after completion."""

from __future__ import annotations

import logging

import anyio
import pytest

from queuestore import BackendManager, DequeueOptions, Job, QueueMovedError, StorageConfig
from queuestore.migration import MigrationManager, MigrationOptions, MigrationPhase
from queuestore.migration._routing import RoutingBackend

from .conftest import ConfigMaker
from .helpers import memory_config, open_plain, stored_ids, unique

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "redis-lists->redis-streams", "redis-streams->redis-lists"])
def setup(request: pytest.FixtureRequest) -> tuple[str, StorageConfig]:
    if request.param == "memory":
        queue = unique("mq")
        return queue, memory_config(queue)
    make: ConfigMaker = request.getfixturevalue("redis_pair")
    src, dst = request.param.split("->")
    return make(src, dst)


async def _manager(cfg: StorageConfig, interval: float) -> BackendManager:
    return await BackendManager.from_config(cfg, home_check_interval=interval)


async def test_writers_in_another_manager_are_redirected_atomically(
    setup: tuple[str, StorageConfig], caplog: pytest.LogCaptureFixture
) -> None:
    queue, cfg = setup
    sealed, go = anyio.Event(), anyio.Event()

    async def hook(step: str, batch: int) -> None:
        if step == "held" and batch == 2:
            sealed.set()
            await go.wait()

    first = await _manager(cfg, 0)
    other = await _manager(cfg, 3600)  # follows only when a write is told: no periodic check here
    caplog.set_level(logging.WARNING, logger="queuestore.migration")
    async with first, other, MigrationManager(first, step_hook=hook) as mm:
        before = [Job(payload={"old": i}) for i in range(200)]
        assert all(await first.get_backend(queue).enqueue_many(before))
        opts = MigrationOptions(target_backend="dst", batch_size=50, drain_first=False)
        await mm.start_migration(queue, opts)
        with anyio.fail_after(20):
            await sealed.wait()
        writer = other.get_backend(queue)
        assert not isinstance(writer, RoutingBackend)
        one = Job(payload="one")
        assert await writer.enqueue(one) is True  # told "moved", sent to the new home
        routed = other.get_backend(queue)
        assert isinstance(routed, RoutingBackend)
        assert routed.follower
        many = [Job(payload={"new": i}) for i in range(30)]
        assert all(await routed.enqueue_many(many))
        assert await writer.enqueue_many([Job(payload="via the old object")]) == [True]
        assert any("still names src" in r.getMessage() for r in caplog.records)

        plain = await open_plain(other, "src", queue)  # a backend no manager follows for
        stray = Job(payload="stray")
        with pytest.raises(QueueMovedError) as err:
            await plain.enqueue(stray)
        assert err.value.code == "QUEUE_MOVED"
        assert "dst" in err.value.home
        assert "password" not in err.value.home
        assert (await plain.get_jobs([stray.id, one.id])) == [None, None]  # nothing on the source

        go.set()
        final = await mm.wait(queue)
        assert final.phase is MigrationPhase.COMPLETED, final.last_error
        target = first.get_backend(queue)
        at_rest = await stored_ids(target)
        expected = {j.id for j in before} | {one.id} | {j.id for j in many}
        assert expected <= set(at_rest)
        assert len(at_rest) == len(expected) + 1  # and the one written through the old object
        assert max(at_rest.values()) == 1
        assert await stored_ids(plain) == {}


async def test_a_process_started_with_the_old_config_follows_and_warns(
    setup: tuple[str, StorageConfig], caplog: pytest.LogCaptureFixture
) -> None:
    queue, cfg = setup
    first = await _manager(cfg, 0)
    async with first, MigrationManager(first) as mm:
        jobs = [Job(payload=i) for i in range(120)]
        assert all(await first.get_backend(queue).enqueue_many(jobs))
        await mm.start_migration(queue, MigrationOptions(target_backend="dst", batch_size=40))
        assert (await mm.wait(queue)).phase is MigrationPhase.COMPLETED
        target_ids = set(await stored_ids(first.get_backend(queue)))
        assert target_ids == {j.id for j in jobs}

        caplog.set_level(logging.WARNING, logger="queuestore.migration")
        late = await _manager(cfg, 0.05)  # the old config: the queue on src
        async with late:
            with anyio.fail_after(10):  # followed, then (completed, source empty) the home alone
                while late.get_backend(queue).name != "dst":
                    await anyio.sleep(0.02)
            assert late.get_backend(queue).name == "dst"
            assert any(
                "this process's config still names src" in r.getMessage() and r.levelno == logging.WARNING
                for r in caplog.records
            )
            got = await late.get_backend(queue).dequeue(DequeueOptions(timeout=1))
            assert got is not None
            assert got.id in target_ids
            extra = Job(payload="after")
            assert await late.get_backend(queue).enqueue(extra)
            assert extra.id in await stored_ids(first.get_backend(queue))


async def test_a_consumer_only_process_follows_the_queue_and_drains_the_source_first(
    setup: tuple[str, StorageConfig],
) -> None:
    queue, cfg = setup
    sealed, go = anyio.Event(), anyio.Event()

    async def hook(step: str, batch: int) -> None:
        if step == "held" and batch == 2:
            sealed.set()
            await go.wait()

    first, consumer = await _manager(cfg, 0), await _manager(cfg, 0.05)
    async with first, consumer, MigrationManager(first, step_hook=hook) as mm:
        old = [Job(payload={"old": i}) for i in range(100)]
        assert all(await first.get_backend(queue).enqueue_many(old))
        await mm.start_migration(
            queue, MigrationOptions(target_backend="dst", batch_size=30, drain_first=False)
        )
        with anyio.fail_after(20):
            await sealed.wait()
        new = Job(payload="new")
        assert await first.get_backend(queue).enqueue(new)  # the migrating process: to the target
        with anyio.fail_after(10):
            while not isinstance(consumer.get_backend(queue), RoutingBackend):
                await anyio.sleep(0.02)
        got: list[Job] = []
        with anyio.fail_after(20):
            while len(got) < 40:  # 100 - 30 moved - 30 held: what is still ready on the source
                job = await consumer.get_backend(queue).dequeue(DequeueOptions(timeout=0.2))
                if job is not None:
                    got.append(job)
                    await consumer.get_backend(queue).ack(job)
        # while the migration runs, the follower leases from the source only
        assert await consumer.get_backend(queue).dequeue(DequeueOptions(timeout=0.3)) is None
        go.set()
        final = await mm.wait(queue)
        assert final.phase is MigrationPhase.COMPLETED, final.last_error
        with anyio.fail_after(20):  # then from the new home: the 30 held + 30 moved + the new one
            while len(got) < 101:
                job = await consumer.get_backend(queue).dequeue(DequeueOptions(timeout=0.2))
                if job is not None:
                    got.append(job)
                    await consumer.get_backend(queue).ack(job)
        ids = [j.id for j in got]
        assert sorted(ids) == sorted({j.id for j in old} | {new.id})
        assert await first.get_backend(queue).length() == 0


async def test_a_rollback_lifts_the_seal_and_writers_go_back_to_the_source(
    setup: tuple[str, StorageConfig],
) -> None:
    queue, cfg = setup
    sealed, go = anyio.Event(), anyio.Event()

    async def hook(step: str, batch: int) -> None:
        if step == "held" and batch == 2:
            sealed.set()
            await go.wait()

    first, other = await _manager(cfg, 0), await _manager(cfg, 0.05)
    async with first, other, MigrationManager(first, step_hook=hook) as mm:
        old = [Job(payload={"old": i}) for i in range(90)]
        assert all(await first.get_backend(queue).enqueue_many(old))
        opts = MigrationOptions(target_backend="dst", batch_size=30, drain_first=False)
        await mm.start_migration(queue, opts)
        with anyio.fail_after(20):
            await sealed.wait()
        during = Job(payload="during")
        assert await other.get_backend(queue).enqueue(during)  # to the target
        assert (await mm.cancel_migration(queue)).phase is MigrationPhase.CANCELLED
        rolled = await mm.rollback_migration(queue)
        assert rolled.phase is MigrationPhase.ROLLED_BACK
        after = Job(payload="after")
        assert await other.get_backend(queue).enqueue(after)  # the seal is lifted: the source
        with anyio.fail_after(10):  # the follower routes back to the source alone
            while other.get_backend(queue).name != "src":
                await anyio.sleep(0.02)
        source = await open_plain(first, "src", queue)
        target = await open_plain(first, "dst", queue)
        on_source = await stored_ids(source)
        assert set(on_source) == {j.id for j in old} | {during.id, after.id}
        assert max(on_source.values()) == 1
        assert await stored_ids(target) == {}
        stored = await mm.read_migration_status(queue)
        assert stored.phase is MigrationPhase.ROLLED_BACK
        assert stored.home is None


@pytest.mark.parametrize("kind", ["memory", "redis-lists"])
async def test_a_move_or_redrive_into_a_sealed_queue_is_refused_and_the_job_stays(
    kind: str, request: pytest.FixtureRequest
) -> None:
    if kind == "memory":
        queue = unique("mq")
        cfg = memory_config(queue)
    else:
        make: ConfigMaker = request.getfixturevalue("redis_pair")
        queue, cfg = make("redis-lists", "redis-lists")
    manager = await _manager(cfg, 0)
    async with manager:
        here = manager.get_backend(queue)
        sealed = await open_plain(manager, "src", unique("sealed"))
        home = '{"type":"redis-streams"}'
        assert (await sealed.migration_record("claim", owner="A", lease=30, fields={"home": home})).granted
        ready, dead = Job(payload="r"), Job(payload="d", max_retries=0)
        assert await here.enqueue_many([dead]) == [True]
        got = await here.dequeue()
        assert got is not None
        await here.nack(got, requeue=False)
        assert await here.enqueue(ready)
        with pytest.raises(QueueMovedError):
            await here.move(ready.id, sealed.queue)
        with pytest.raises(QueueMovedError):
            await here.redrive([dead.id], to_queue=sealed.queue)
        states = [j.state if j else None for j in await here.get_jobs([ready.id, dead.id])]
        assert states == ["ready", "dead"]
        assert await sealed.get_jobs([ready.id, dead.id]) == [None, None]

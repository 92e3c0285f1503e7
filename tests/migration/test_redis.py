"""Real servers: dry run byte-identical, timeout, in-progress refusal, cancel/resume,
redis <-> memory and standalone -> cluster."""

from __future__ import annotations

import anyio
import pytest
import redis

from queuestore import (
    BackendConfig,
    DequeueOptions,
    Job,
    MigrationError,
    MigrationInProgressError,
    QueueStoreError,
    error_code,
)
from queuestore.migration import (
    MigrationManager,
    MigrationOptions,
    MigrationPhase,
    MigrationTool,
)
from queuestore.migration._routing import RoutingBackend
from tests.servers import RedisCluster, RedisServer

from .conftest import ConfigMaker
from .helpers import manager_for, redis_backend, stored_ids, two_backend_config, unique

pytestmark = pytest.mark.anyio


def _dump(client: redis.Redis, prefixes: list[str]) -> dict[bytes, bytes | None]:
    """DUMP of every key under the test's prefixes (SCAN is fine in a test, never in the library),
    but the call records: the backends' maintenance sweep deletes those whose replies came back
    (forgotten on receipt), whatever a migration does."""
    out: dict[bytes, bytes | None] = {}
    for prefix in prefixes:
        for key in client.scan_iter(match=f"{prefix}*", count=1000):
            if key.rsplit(b":", 1)[-1] in (b"calls", b"calltimes") or key.endswith(b":calls:at"):
                continue
            out[key] = client.dump(key)  # type: ignore[assignment]
    return out


async def _fill(backend, n: int = 300) -> set[str]:  # type: ignore[no-untyped-def]
    jobs = [Job(payload={"i": i}, priority=i % 2) for i in range(n)]
    await backend.enqueue_many(jobs)
    later = [Job(payload={"later": i}).delayed(120) for i in range(20)]
    await backend.enqueue_many(later)
    return {j.id for j in jobs + later}


@pytest.mark.parametrize("pair", [("redis-lists", "redis-streams"), ("redis-streams", "redis-lists")])
async def test_dry_run_leaves_both_sides_byte_identical(
    redis_pair: ConfigMaker, redis_server: RedisServer, pair: tuple[str, str]
) -> None:
    queue, cfg = redis_pair(*pair)
    prefixes = [cfg.backends[n].options["key_prefix"] for n in ("src", "dst")]
    manager = await manager_for(cfg)
    client = redis_server.sync_client()
    async with manager:
        b = manager.get_backend(queue)
        await _fill(b)
        got = await b.dequeue()
        assert got is not None
        await b.nack(got, requeue=False)
        before = _dump(client, prefixes)
        assert before
        assert not any(k.startswith(prefixes[1].encode()) for k in before)
        status = await MigrationTool(manager).execute_migration(
            queue, MigrationOptions(target_backend="dst", dry_run=True)
        )
        assert status.phase is MigrationPhase.COMPLETED
        assert status.dry_run
        assert status.total_jobs == 320
        assert _dump(client, prefixes) == before
        assert manager.get_backend(queue) is b


async def test_timeout_in_progress_and_cancel_resume(redis_pair: ConfigMaker) -> None:
    queue, cfg = redis_pair("redis-lists", "redis-streams")
    manager = await manager_for(cfg)
    slow = anyio.Event()

    async def hook(step: str, batch: int) -> None:
        if step == "imported" and not slow.is_set():
            await anyio.sleep(0.05)

    async with manager, MigrationManager(manager, step_hook=hook) as mm:
        b = manager.get_backend(queue)
        ids = await _fill(b, 600)
        lease = await b.dequeue(DequeueOptions(visibility_timeout=60))
        assert lease is not None
        # a lease that never ends: the deadline hits while draining waits for it
        with pytest.raises(MigrationError) as err:
            await MigrationTool(manager).execute_migration(
                queue, MigrationOptions(target_backend="dst", drain_first=True, timeout=1.0, batch_size=200)
            )
        assert err.value.phase == "draining"
        assert error_code(err.value) == "MIGRATION_FAILED"
        proxy = manager.get_backend(queue)
        assert isinstance(proxy, RoutingBackend)
        both = await stored_ids(proxy.source) + await stored_ids(proxy.target)
        assert set(both) == ids
        assert max(both.values()) == 1
        await proxy.ack(lease)
        ids.discard(lease.id)
        for i in range(300):  # new work arrives on the target while the queue is half moved
            job = Job(payload={"new": i})
            await proxy.enqueue(job)
            ids.add(job.id)

        opts = MigrationOptions(target_backend="dst", drain_first=False, batch_size=20)
        await mm.start_migration(queue, opts)
        with pytest.raises(MigrationInProgressError) as busy:
            await mm.start_migration(queue, opts)
        assert error_code(busy.value) == "MIGRATION_IN_PROGRESS"
        with pytest.raises(MigrationInProgressError):
            await MigrationTool(manager).execute_migration(queue, opts)
        await anyio.sleep(0.1)
        cancelled = await mm.cancel_migration(queue)
        assert cancelled.phase is MigrationPhase.CANCELLED
        both = await stored_ids(proxy.source) + await stored_ids(proxy.target)
        assert set(both) == ids
        assert max(both.values()) == 1
        assert await proxy.source.migration_held(cancelled.migration_id) == []
        slow.set()
        await mm.resume(queue)
        final = await mm.wait(queue)
        assert final.phase is MigrationPhase.COMPLETED, final.last_error
        target = manager.get_backend(queue)
        assert target is proxy.target
        at_rest = await stored_ids(target)
        assert set(at_rest) == ids
        assert max(at_rest.values()) == 1


@pytest.mark.parametrize("direction", ["redis-to-memory", "memory-to-redis"])
async def test_redis_and_memory(redis_server: RedisServer, direction: str) -> None:
    queue = unique("mq")
    red = redis_backend("redis-lists", redis_server.url, unique("qs-mig") + ":")
    mem = BackendConfig(type="memory", name="mem", options={"namespace": unique("ns")})
    src, dst = (red, mem) if direction == "redis-to-memory" else (mem, red)
    manager = await manager_for(two_backend_config(queue, src, dst))
    async with manager:
        ids = await _fill(manager.get_backend(queue), 500)
        status = await MigrationTool(manager).quick_migrate(queue, "dst")
        assert status.phase is MigrationPhase.COMPLETED
        assert status.migrated_jobs == 520
        target = manager.get_backend(queue)
        at_rest = await stored_ids(target)
        assert set(at_rest) == ids
        assert max(at_rest.values()) == 1
        assert [j.id async for j in target.iter()][:3] == [j.id async for j in target.iter()][:3]


async def test_standalone_to_cluster(redis_server: RedisServer, redis_cluster: RedisCluster) -> None:
    queue = unique("mq")
    src = redis_backend("redis-streams", redis_server.url, unique("qs-mig") + ":")
    dst = redis_backend(
        "redis-lists", redis_cluster.url, unique("qs-mig") + ":", list(redis_cluster.startup_nodes)
    )
    manager = await manager_for(two_backend_config(queue, src, dst))
    async with manager:
        b = manager.get_backend(queue)
        ids = await _fill(b, 1000)
        got = await b.dequeue()
        assert got is not None
        await b.nack(got, requeue=False)
        status = await MigrationTool(manager).execute_migration(
            queue, MigrationOptions(target_backend="dst", batch_size=200)
        )
        assert status.phase is MigrationPhase.COMPLETED
        assert status.verified
        assert status.moved_by_state == {"ready": 999, "delayed": 20, "dead": 1}
        target = manager.get_backend(queue)
        assert target.capabilities().clustering
        at_rest = await stored_ids(target)
        assert set(at_rest) == ids
        assert max(at_rest.values()) == 1


async def test_type_name_target_means_same_server(redis_pair: ConfigMaker) -> None:
    queue, cfg = redis_pair("redis-lists", "redis-streams")
    manager = await manager_for(cfg)
    async with manager:
        await _fill(manager.get_backend(queue), 50)
        plan = await MigrationTool(manager).plan_migration(
            queue, MigrationOptions(target_backend="redis-streams")
        )
        assert plan.target_backend == "redis-streams"
        assert plan.job_count == 70
        assert "target lacks prioritization" in plan.warnings
        assert plan.estimated_duration > 0
        assert plan.sample_rate > 0
        with pytest.raises(QueueStoreError):
            await MigrationTool(manager).plan_migration(queue, MigrationOptions(target_backend="src"))


async def test_undecodable_source_entry_fails_loudly(redis_server: RedisServer) -> None:
    queue, prefix = unique("mq"), unique("qs-mig") + ":"
    src = redis_backend("redis-streams", redis_server.url, prefix)
    dst = redis_backend("redis-lists", redis_server.url, unique("qs-mig") + ":")
    manager = await manager_for(two_backend_config(queue, src, dst))
    client = redis_server.sync_client()
    async with manager:
        ids = await _fill(manager.get_backend(queue), 30)
        # a garbage entry written behind the library's back (the test knows the key layout)
        eid = client.xadd(f"{prefix}{{{queue}}}:stream", {"j": "garbage-1", "b": b"\xc1\xc1not-msgpack"})
        client.hset(f"{prefix}{{{queue}}}:idx", "garbage-1", eid)
        status = await MigrationTool(manager).execute_migration(
            queue, MigrationOptions(target_backend="dst", drain_first=False), raise_on_failure=False
        )
        assert status.phase is MigrationPhase.FAILED
        assert status.failed_phase == "copying"
        assert status.last_error is not None
        assert "corrupt entry" in status.last_error
        proxy = manager.get_backend(queue)
        assert isinstance(proxy, RoutingBackend)
        both = await stored_ids(proxy.source) + await stored_ids(proxy.target)
        assert ids <= set(both)
        assert max(both.values()) == 1

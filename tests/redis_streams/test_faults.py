"""Real faults: SCRIPT FLUSH mid-traffic, concurrent reclaimers, a server killed -9 under load."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest
import redis

from queuestore import DequeueOptions, Job, QueueStoreError

from .conftest import Maker, config

pytestmark = pytest.mark.anyio


async def test_script_flush_during_operations_is_invisible(make: Maker, redis_server: Any) -> None:
    backend = await make()
    sync = redis.Redis.from_url(redis_server.url)
    stop = anyio.Event()

    async def flusher() -> None:
        while not stop.is_set():
            await anyio.to_thread.run_sync(sync.script_flush)
            await anyio.sleep(0.005)

    acked: list[str] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(flusher)
        for i in range(150):
            await backend.enqueue(Job(id=f"j{i}", payload=i))
            got = await backend.dequeue()
            assert got is not None
            if i % 3 == 0:
                await backend.nack(got, requeue=True, delay=0)
                got = await backend.dequeue()
                assert got is not None
            await backend.ack(got)
            acked.append(got.id)
        batch = [Job(payload=n) for n in range(50)]
        await backend.enqueue_many(batch)
        acked += [j.id for j in await backend.dequeue_many(DequeueOptions(count=50))]
        stop.set()
    assert sorted(acked[:150]) == sorted(f"j{i}" for i in range(150))
    assert backend.script_set.reloads > 0, "the flushes were never noticed"
    sync.close()


async def test_four_concurrent_reclaimers_redeliver_each_expired_lease_once(make: Maker) -> None:
    first = await make(visibility_timeout=0.3)
    n = 1000
    assert all(await first.enqueue_many([Job(id=f"r{i}", payload=i) for i in range(n)]))
    leased = await first.dequeue_many(DequeueOptions(count=n))
    assert len(leased) == n
    await anyio.sleep(0.5)
    reclaimers = [await make(visibility_timeout=30, claim_count=50) for _ in range(4)]
    got: list[Job] = []

    async def reclaim(b: Any) -> None:
        while batch := await b.dequeue_many(DequeueOptions(count=37)):
            got.extend(batch)

    async with anyio.create_task_group() as tg:
        for b in reclaimers:
            tg.start_soon(reclaim, b)
    counts = Counter(j.id for j in got)
    assert len(counts) == n, "a job was lost"
    assert set(counts.values()) == {1}, "a job was redelivered twice"
    assert {(j.attempt, j.retry_count) for j in got} == {(2, 1)}
    results = await first.ack_many(leased[:10])
    assert results == [False] * 10, "stale holders must not ack"


async def test_server_killed_under_load_keeps_every_acknowledged_job_once(aof_redis_server: Any) -> None:
    from queuestore.backends.redis_streams import RedisStreamsFactory

    cfg = config(aof_redis_server.url, "durable", key_prefix="kill:", read_timeout=0.5, max_retries=1)
    backend = await RedisStreamsFactory().create(cfg)
    acknowledged: list[str] = []
    stop = anyio.Event()

    async def producer(p: int) -> None:
        i = 0
        while not stop.is_set():
            job_id = f"p{p}-{i}"
            while True:  # retry the same id until the outcome is known
                try:
                    await backend.enqueue(Job(id=job_id, payload=i))
                    break
                except QueueStoreError:
                    await anyio.sleep(0.05)
            acknowledged.append(job_id)
            i += 1

    async def killer() -> None:
        await anyio.sleep(0.4)
        await anyio.to_thread.run_sync(aof_redis_server.kill)
        await anyio.sleep(0.3)
        await anyio.to_thread.run_sync(aof_redis_server.restart)
        await anyio.sleep(0.4)
        stop.set()

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for p in range(3):
                tg.start_soon(producer, p)
            tg.start_soon(killer)
    raw = redis.Redis.from_url(aof_redis_server.url)
    entries = raw.xrange(backend.skeys.stream)
    stored = Counter(fields[b"j"].decode() for _, fields in entries)
    assert set(acknowledged) <= set(stored), f"lost: {sorted(set(acknowledged) - set(stored))[:5]}"
    assert set(stored.values()) == {1}, "a job is stored twice"
    assert len(acknowledged) == len(set(acknowledged))
    assert len(acknowledged) > 50
    raw.close()
    await backend.aclose()

"""Real faults: a consumer killed -9 mid-job, SCRIPT FLUSH between and during operations,
concurrent reclaimers, and the server killed -9 under load (AOF, appendfsync always).
Every check is job by job."""

from __future__ import annotations

import os
import random
import signal
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest

from queuestore import DequeueOptions, IterOptions, Job, JobState, QueueStoreError
from queuestore.backends.redis_lists import RedisListsBackend
from queuestore.testing import ServerFactory
from tests.servers import RedisCluster, RedisServer

from .conftest import Maker

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]
ALL = (JobState.READY, JobState.DELAYED, JobState.IN_FLIGHT, JobState.DEAD)

CONSUMER = """
import asyncio, sys
from queuestore import BackendConfig
from queuestore.backends.redis_lists import RedisListsFactory
async def main():
    config = BackendConfig(type="redis-lists", name="child", url=sys.argv[1], queue=sys.argv[2],
                           options={"key_prefix": sys.argv[3], "visibility_timeout": 1.0})
    backend = await RedisListsFactory().create(config)
    job = await backend.dequeue()
    print(job.id if job else "none", flush=True)
    await asyncio.sleep(3600)  # "working" until killed
asyncio.run(main())
"""


async def walk(backend: RedisListsBackend) -> Counter[str]:
    return Counter([j.id async for j in backend.iter(IterOptions(states=ALL, count=500))])


async def test_consumer_killed_mid_job_is_redelivered(lists: Maker, redis_server: RedisServer) -> None:
    backend = await lists(visibility_timeout=1.0)
    job = Job(payload="work")
    await backend.enqueue(job)
    proc = await anyio.open_process(
        [sys.executable, "-c", CONSUMER, redis_server.url, backend.queue, lists.prefix],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = b""
        with anyio.fail_after(20):
            while not line.endswith(b"\n"):
                line += await proc.stdout.receive()
        assert line.decode().strip() == job.id  # it holds the lease now, mid-job
        os.kill(proc.pid, signal.SIGKILL)
        with anyio.fail_after(10):
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.aclose()
    assert await backend.dequeue() is None  # still leased by the dead consumer
    got = await backend.dequeue(DequeueOptions(timeout=3.0))
    assert got is not None
    assert got.id == job.id
    assert (got.retry_count, got.attempt, got.last_error) == (1, 2, "lease expired")
    await backend.ack(got)
    assert await walk(backend) == Counter()


async def test_script_flush_between_operations(lists: Maker, redis_server: RedisServer) -> None:
    backend = await lists(batch_size=3)
    r = redis_server.sync_client()
    jobs = [Job(payload=i) for i in range(10)]
    r.script_flush()
    assert await backend.enqueue(jobs[0])
    r.script_flush()
    assert await backend.enqueue_many(jobs[1:]) == [True] * 9  # pipelined: NOSCRIPT inside a pipeline
    r.script_flush()
    got = await backend.dequeue_many(DequeueOptions(count=10))
    r.script_flush()
    assert await backend.ack_many(got) == [True] * 10
    assert await walk(backend) == Counter()
    assert backend.script_set.reloads >= 4


async def test_script_flush_on_every_cluster_node(cluster_lists: Maker, redis_cluster: RedisCluster) -> None:
    backend = await cluster_lists(batch_size=2)
    for node in redis_cluster.nodes:
        node.sync_client().script_flush()
    assert await backend.enqueue_many([Job(payload=i) for i in range(6)]) == [True] * 6
    for node in redis_cluster.nodes:
        node.sync_client().script_flush()
    got = await backend.dequeue_many(DequeueOptions(count=6))
    assert await backend.ack_many(got) == [True] * 6


async def test_script_flush_during_concurrent_work(lists: Maker, redis_server: RedisServer) -> None:
    backends = [await lists(batch_size=5) for _ in range(3)]
    ids = [f"job-{i}" for i in range(300)]
    acked: list[str] = []
    done = anyio.Event()

    async def flusher() -> None:
        r = redis_server.sync_client()
        while not done.is_set():
            await anyio.to_thread.run_sync(r.script_flush)
            await anyio.sleep(0.003)

    async def producer(b: RedisListsBackend, part: list[str]) -> None:
        for i in range(0, len(part), 10):
            assert await b.enqueue_many([Job(id=x, payload=x) for x in part[i : i + 10]]) == [True] * 10

    async def consumer(b: RedisListsBackend) -> None:
        while len(acked) < len(ids):
            for job in await b.dequeue_many(DequeueOptions(count=7, timeout=0.2)):
                await b.ack(job)
                acked.append(job.id)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(flusher)
            async with anyio.create_task_group() as work:
                for k, b in enumerate(backends):
                    work.start_soon(producer, b, ids[k::3])
                    work.start_soon(consumer, b)
            done.set()
    assert sorted(acked) == sorted(ids), "a job was lost or delivered twice"
    assert sum(b.script_set.reloads for b in backends) > 0
    assert await walk(backends[0]) == Counter()


async def test_four_reclaimers_requeue_each_expired_lease_once(lists: Maker) -> None:
    first = await lists(visibility_timeout=0.5)
    jobs = [Job(payload=i, max_retries=5) for i in range(1000)]
    assert sum(await first.enqueue_many(jobs)) == 1000
    leased = await first.dequeue_many(DequeueOptions(count=1000))
    assert len(leased) == 1000
    await anyio.sleep(0.8)
    reclaimers = [await lists(reclaim_batch=37) for _ in range(4)]
    counts: list[int] = []

    async def reclaim(b: RedisListsBackend) -> None:
        counts.append(await b.reclaim())

    async with anyio.create_task_group() as tg:
        for b in reclaimers:
            tg.start_soon(reclaim, b)
    assert sum(counts) == 1000
    assert len([c for c in counts if c]) >= 2
    stored = {j.id: j async for j in first.iter(IterOptions(states=ALL, count=250))}
    assert len(stored) == 1000
    for job in jobs:  # job by job: requeued exactly once
        got = stored[job.id]
        assert (got.state, got.retry_count, got.attempt) == (JobState.READY, 1, 1), got
    assert await walk(first) == Counter({j.id: 1 for j in jobs})


async def test_server_killed_under_load_keeps_every_acknowledged_enqueue(
    aof_redis_server: RedisServer,
) -> None:
    maker = Maker(aof_redis_server.url)
    backends = [await maker(read_timeout=0.5, conn_timeout=0.5, max_retries=1) for _ in range(3)]
    stored: list[str] = []
    errors: list[str] = []
    per_producer = 120

    async def producer(b: RedisListsBackend, k: int) -> None:
        for i in range(per_producer):
            job = Job(id=f"p{k}-{i}", payload=i)
            while True:  # an error is an unknown outcome: retry with the same id
                try:
                    await b.enqueue(job)  # True or False: either way it is stored now
                    stored.append(job.id)
                    break
                except QueueStoreError as exc:
                    errors.append(exc.code)
                    await anyio.sleep(0.05)
            await anyio.sleep(random.random() * 0.004)

    async def chaos() -> None:
        await anyio.sleep(0.3)
        aof_redis_server.kill()
        await anyio.sleep(0.5)
        await anyio.to_thread.run_sync(aof_redis_server.restart)

    try:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(chaos)
                for k, b in enumerate(backends):
                    tg.start_soon(producer, b, k)
        assert len(stored) == 3 * per_producer
        assert errors, "the server was not killed under load"
        found = await walk(backends[0])
        missing = [x for x in stored if x not in found]
        assert not missing, f"acknowledged enqueues lost: {missing[:5]}"
        assert all(n == 1 for n in found.values()), "a job is stored twice"
        assert set(found) == set(stored)
        assert await backends[0].length() == len(stored)
    finally:
        await maker.aclose()


async def test_a_stalled_server_is_an_unknown_outcome_and_loses_nothing(
    redis_server_factory: ServerFactory,
) -> None:
    server = redis_server_factory()
    maker = Maker(server.url)
    try:
        b = await maker(read_timeout=0.3, max_retries=0, visibility_timeout=0.5)
        ids = [f"s{i}" for i in range(20)]
        assert await b.enqueue_many([Job(id=x, payload=x) for x in ids]) == [True] * 20
        server.pause()  # SIGSTOP: the script is sent, nothing is answered
        try:
            with pytest.raises(QueueStoreError) as err:
                await b.dequeue_many(DequeueOptions(count=10))
            # the script was sent: its outcome is unknown (no reply to its retries, or none
            # within the call deadline, which then hands back what it leased, if it can)
            assert err.value.code in ("OUTCOME_UNKNOWN", "TIMEOUT")
            assert "unknown" in str(err.value) or err.value.code == "OUTCOME_UNKNOWN"
        finally:
            server.resume()  # the stalled script runs now: its leases are real, its reply is lost
        acked: list[str] = []
        attempts: dict[str, int] = {}
        with anyio.fail_after(20):
            while len(acked) < len(ids):
                for job in await b.dequeue_many(DequeueOptions(count=20, timeout=1.0)):
                    await b.ack(job)
                    acked.append(job.id)
                    attempts[job.id] = job.attempt
        assert sorted(acked) == sorted(ids), "a job was lost or delivered twice after the stall"
        # the stalled call leased 10 jobs whose reply never came: they came back once, reclaimed
        assert sorted(attempts.values()) == [1] * 10 + [2] * 10
        assert await b.length() == 0
        assert await walk(b) == Counter()
    finally:
        await maker.aclose()

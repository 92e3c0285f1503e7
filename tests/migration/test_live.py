"""Done-when: 10,000 jobs in mixed states move lists <-> streams while producers and consumers run.

Every id enqueued (before and during the run) is acked exactly once, or is still dead
(dead-lettered before the migration) in the target's dead state.
"""

from __future__ import annotations

import random
from collections import Counter

import anyio
import pytest

from queuestore import BackendManager, DequeueOptions, Job, JobState, QueueBackend
from queuestore.migration import MigrationManager, MigrationOptions, MigrationPhase
from queuestore.migration._routing import RoutingBackend

from .conftest import ConfigMaker
from .helpers import manager_for, stored_jobs

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

N_READY, N_DELAYED, N_DEAD, N_IN_FLIGHT = 8000, 800, 500, 700
N_PRODUCED = 1000


async def _fill(b: QueueBackend, enqueued: set[str]) -> tuple[set[str], list[Job]]:
    rnd = random.Random(7)
    doomed = [Job(payload={"dead": i}, max_retries=0) for i in range(N_DEAD)]
    await b.enqueue_many(doomed)
    dead: set[str] = set()
    while len(dead) < N_DEAD:
        for job in await b.dequeue_many(DequeueOptions(count=100)):
            await b.nack(job, requeue=False, error="poison")
            dead.add(job.id)
    held = [Job(payload={"held": i}) for i in range(N_IN_FLIGHT)]
    await b.enqueue_many(held)
    leases: list[Job] = []
    while len(leases) < N_IN_FLIGHT:
        leases += await b.dequeue_many(DequeueOptions(count=100, visibility_timeout=120))
    ready = [Job(payload={"n": i, "pad": "x" * 50}, priority=rnd.choice((0, 0, 5))) for i in range(N_READY)]
    for i in range(0, N_READY, 1000):
        await b.enqueue_many(ready[i : i + 1000])
    delayed = [Job(payload={"d": i}).delayed(rnd.uniform(1.0, 4.0)) for i in range(N_DELAYED)]
    await b.enqueue_many(delayed)
    enqueued.update(j.id for j in doomed + held + ready + delayed)
    assert len(enqueued) == 10_000
    return dead, leases


async def _run_live(manager: BackendManager, queue: str, drain_first: bool) -> None:
    enqueued: set[str] = set()
    acked: list[str] = []
    dead, leases = await _fill(manager.get_backend(queue), enqueued)
    producers_done: list[int] = []
    stop = anyio.Event()

    async def producer(k: int) -> None:
        for i in range(N_PRODUCED // 2):
            job = Job(payload={"p": k, "i": i})
            enqueued.add(job.id)
            assert await manager.get_backend(queue).enqueue(job)
            if i % 50 == 0:
                await anyio.sleep(0.02)
        producers_done.append(k)

    async def consumer(k: int) -> None:
        rnd = random.Random(k)
        while not stop.is_set():
            b = manager.get_backend(queue)
            jobs = await b.dequeue_many(DequeueOptions(count=20, timeout=0.1, consumer_id=f"c{k}"))
            done: list[Job] = []
            for job in jobs:
                if rnd.random() < 0.03 and job.retry_count == 0:
                    await b.nack(job, requeue=True, error="flaky")
                else:
                    done.append(job)
            if done:
                oks = await b.ack_many(done)
                acked.extend(j.id for j, ok in zip(done, oks, strict=True) if ok)

    async def lease_holder() -> None:
        await anyio.sleep(0.3)
        for i, job in enumerate(leases):  # the jobs in flight when the migration started
            b = manager.get_backend(queue)
            if i % 2:
                await b.nack(job, requeue=True)  # comes back to the source: swept over
            else:
                await b.ack(job)
                acked.append(job.id)
            if i % 100 == 0:
                await anyio.sleep(0.05)

    async with MigrationManager(manager) as mm, anyio.create_task_group() as tg:
        for k in range(2):
            tg.start_soon(producer, k)
        for k in range(3):
            tg.start_soon(consumer, k)
        await anyio.sleep(0.05)
        opts = MigrationOptions(target_backend="dst", drain_first=drain_first, batch_size=250, timeout=90)
        await mm.start_migration(queue, opts)
        tg.start_soon(lease_holder)
        final = await mm.wait(queue)
        assert final.phase is MigrationPhase.COMPLETED, final.last_error
        assert final.verified is True
        # the consumers here drain the source during the grace after the seal (SEAL_GRACE), too
        assert final.migrated_jobs > 1000
        assert final.moved_by_state["ready"] > 0
        assert final.moved_by_state.get("dead") == N_DEAD
        with anyio.fail_after(60):
            while len(producers_done) < 2 or len(set(acked)) + len(dead) < len(enqueued):
                await anyio.sleep(0.1)
        stop.set()
    target = manager.get_backend(queue)
    assert not isinstance(target, RoutingBackend)
    assert target.name == "dst"
    counts = Counter(acked)
    assert max(counts.values()) == 1, [i for i, n in counts.items() if n > 1][:5]
    assert set(acked) | dead == enqueued
    assert not set(acked) & dead
    left = await stored_jobs(target)
    assert set(left) == dead
    assert all(j.state is JobState.DEAD for j in left.values())


@pytest.mark.timeout(150)
@pytest.mark.parametrize(
    ("src", "dst", "drain"),
    [("redis-lists", "redis-streams", False), ("redis-streams", "redis-lists", True)],
    ids=["lists-to-streams", "streams-to-lists-drain"],
)
async def test_live_10k_jobs_with_traffic(redis_pair: ConfigMaker, src: str, dst: str, drain: bool) -> None:
    queue, cfg = redis_pair(src, dst)
    manager = await manager_for(cfg)
    async with manager:
        await _run_live(manager, queue, drain)

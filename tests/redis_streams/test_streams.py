"""Stream behaviour: fan-out groups, a killed consumer, replay windows, bounded memory, retention."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from queuestore import DequeueOptions, IterOptions, Job, JobNotFoundError

from .conftest import Maker, unique

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


async def drain(backend: Any, **opts: Any) -> list[Job]:
    got: list[Job] = []
    while batch := await backend.dequeue_many(DequeueOptions(count=500, **opts)):
        got += batch
        assert await backend.ack_many(batch) == [True] * len(batch)
    return got


async def test_two_groups_each_receive_every_job_once(make: Maker) -> None:
    a = await make(consumer_group="billing", groups=("billing", "audit"))
    b = await make(consumer_group="audit")
    jobs = [Job(payload=i) for i in range(300)]
    assert await a.enqueue_many(jobs) == [True] * 300
    first = await drain(a)
    # a job nacked by one group is retried for that group only
    retry = Job(payload="r")
    await a.enqueue(retry)
    got = await a.dequeue()
    assert got is not None
    await a.nack(got, requeue=True)
    again = await a.dequeue()
    assert again is not None
    assert again.id == retry.id
    assert again.retry_count == 1
    await a.ack(again)
    second = await drain(b)
    # per-call override of the group reads the same stream
    assert sorted(j.id for j in first) == sorted(j.id for j in jobs)
    assert sorted(j.id for j in second) == sorted([*(j.id for j in jobs), retry.id])
    raw = a.conn.client
    assert await raw.xlen(a.skeys.stream) == 0, "entries acked by every group are deleted"


async def test_dequeue_options_override_group_and_consumer(make: Maker) -> None:
    a = await make(groups=("workers", "extra"))
    await a.enqueue(Job(id="x1", payload=1))
    j1 = await a.dequeue(DequeueOptions(consumer_group="extra", consumer_id="c-9"))
    j2 = await a.dequeue()
    assert j1 is not None
    assert j2 is not None
    assert j1.id == j2.id == "x1"
    assert j1.lease_token
    assert "extra" in j1.lease_token
    assert "c-9" in j1.lease_token
    await a.ack(j1)  # acked with the group it was read with
    await a.ack(j2)
    with pytest.raises(JobNotFoundError):
        await a.ack("x1")


async def test_killed_consumer_job_comes_back_after_claim_min_idle(make: Maker, redis_server: Any) -> None:
    backend = await make(claim_min_idle=1.0)
    job = Job(payload="work")
    await backend.enqueue(job)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [redis_server.url, backend.queue, backend.options.key_prefix]
    argv = [sys.executable, "-m", "tests.redis_streams._worker", *args]
    proc = await anyio.to_thread.run_sync(
        lambda: subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE)
    )
    try:
        assert proc.stdout is not None
        line = await anyio.to_thread.run_sync(proc.stdout.readline)
        assert line.decode().strip() == job.id
    finally:
        proc.send_signal(signal.SIGKILL)
        await anyio.to_thread.run_sync(proc.wait)
    assert await backend.dequeue() is None, "the lease is still held"
    start = time.monotonic()
    got = await backend.dequeue(DequeueOptions(timeout=4.0))
    assert got is not None
    assert got.id == job.id
    assert (got.attempt, got.retry_count, got.last_error) == (2, 1, "lease expired")
    assert time.monotonic() - start < 3.0
    await backend.ack(got)


async def test_replay_of_a_time_window_in_order_and_reverse(make: Maker) -> None:
    backend = await make(retention="retain")

    async def batch(n: int) -> list[Job]:
        jobs = [Job(payload=i) for i in range(n)]
        for j in jobs:
            await backend.enqueue(j)
        return jobs

    await batch(5)
    await anyio.sleep(0.02)
    t0 = time.time()
    inside = await batch(12)
    t1 = time.time()
    await anyio.sleep(0.02)
    await batch(5)
    await drain(backend)  # acked, but retained for replay
    assert await backend.length() == 0
    opts = {"start_time": t0, "end_time": t1, "count": 5}
    fwd = [j.id async for j in backend.iter(IterOptions(**opts))]
    rev = [j.id async for j in backend.iter(IterOptions(reverse=True, **opts))]
    assert fwd == [j.id for j in inside]
    assert rev == fwd[::-1]
    # by entry id: the same window
    first_eid = (await backend.conn.client.xrange(backend.skeys.stream, count=6))[5][0].decode()
    by_id = [j.id async for j in backend.iter(IterOptions(start_id=first_eid, count=4))]
    assert by_id[:12] == fwd


async def test_100k_jobs_fully_acked_leave_an_empty_stream(make: Maker) -> None:
    backend = await make(strict_keys=False)
    total, size = 100_000, 5000
    for i in range(0, total, size):
        assert all(await backend.enqueue_many([Job(payload=n) for n in range(i, i + size)]))
    assert await backend.length() == total
    seen = 0
    while batch := await backend.dequeue_many(DequeueOptions(count=size)):
        seen += len(batch)
        await backend.ack_many(batch)
    assert seen == total
    raw = backend.conn.client
    assert await raw.xlen(backend.skeys.stream) == 0
    assert await raw.hlen(backend.skeys.idx) == 0
    assert await raw.zcard(backend.skeys.leases) == 0


async def test_retention_keeps_acked_entries_and_never_trims_pending(make: Maker) -> None:
    fast = await make(retention="retain", max_length=10, consumer_name="fast")
    slow = await make(retention="retain", max_length=10, consumer_name="slow", visibility_timeout=60)
    assert all(await fast.enqueue_many([Job(payload=i) for i in range(60)]))
    held = await slow.dequeue_many(DequeueOptions(count=5))  # the lagging consumer
    assert len(held) == 5
    await drain(fast)
    raw = fast.conn.client
    assert await raw.xlen(fast.skeys.stream) == 60  # retained
    for _ in range(5):
        await fast.sweep()
    pending_ids = [job.lease_token.split("\x1f")[2] for job in held if job.lease_token]
    for eid in pending_ids:
        assert await raw.xrange(fast.skeys.stream, eid, eid), f"pending entry {eid} was trimmed"
    assert await raw.xlen(fast.skeys.stream) == 60, "nothing at or after the oldest pending entry is trimmed"
    assert await slow.ack_many(held) == [True] * 5
    for _ in range(10):
        await fast.sweep()
    assert await raw.xlen(fast.skeys.stream) == 10, "trimmed down to max_length once nothing is pending"


async def test_cluster_queues_on_every_node_and_cross_slot_move(make_cluster: Maker) -> None:
    queues = [unique(f"c{i}") for i in range(6)]
    backends = [await make_cluster(q) for q in queues]
    for b in backends:
        await b.enqueue(Job(id=f"{b.queue}-1", payload=1))
    src, dst = backends[0], backends[1]
    got = await src.dequeue()
    assert got is not None
    await src.move(got, dst.queue)
    arrived = await dst.dequeue_many(DequeueOptions(count=5))
    moved = next(j for j in arrived if j.id == got.id)
    assert moved.origin_queue == src.queue
    assert len(arrived) == 2
    assert await dst.ack_many(arrived) == [True, True]
    for b in backends[2:]:
        j = await b.dequeue()
        assert j is not None
        await b.ack(j)
    assert [await b.length() for b in backends] == [0] * 6

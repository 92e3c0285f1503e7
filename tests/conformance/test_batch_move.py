"""Batch operations (enqueue_many / dequeue_many / ack_many) and move between queues."""

from __future__ import annotations

import time

import anyio
import msgspec
import pytest

from queuestore import (
    DequeueOptions,
    InvalidJobError,
    Job,
    JobNotFoundError,
    JobState,
    QueueBackend,
    UnsupportedOperationError,
)

from .conftest import BackendMaker
from .conservation import Ledger, require

pytestmark = pytest.mark.anyio


async def test_batch_operations_or_an_honest_refusal(backend: QueueBackend) -> None:
    if backend.capabilities().batch_operations:
        assert await backend.enqueue_many([]) == []
        assert await backend.dequeue_many(DequeueOptions(count=3)) == []
        return
    with pytest.raises(UnsupportedOperationError):
        await backend.enqueue_many([Job(payload=1)])
    with pytest.raises(UnsupportedOperationError):
        await backend.dequeue_many(DequeueOptions(count=2))
    with pytest.raises(UnsupportedOperationError):
        await backend.ack_many(["x"])


async def test_enqueue_many_dequeue_many_ack_many(backend: QueueBackend) -> None:
    require(backend, "batch_operations")
    ledger = Ledger()
    jobs = [Job(payload=i) for i in range(10)]
    assert await backend.enqueue_many([*jobs, Job(id=jobs[0].id, payload="dup")]) == [True] * 10 + [False]
    ledger.add(jobs)
    first = await backend.dequeue_many(DequeueOptions(count=4))
    assert [j.id for j in first] == [j.id for j in jobs[:4]]
    assert all(j.lease_token and j.attempt == 1 and j.state == JobState.IN_FLIGHT for j in first)
    for j in first:
        ledger.expect(j.id, JobState.IN_FLIGHT)
    await ledger.check(backend)
    results = await backend.ack_many([first[0], first[1].id, "no-such-job", first[2]])
    assert results == [True, True, False, True]
    assert await backend.ack_many([first[0]]) == [False]  # acked already
    for j in first[:3]:
        ledger.remove(j.id)
    rest = await backend.dequeue_many(DequeueOptions(count=100))
    assert [j.id for j in rest] == [j.id for j in jobs[4:]]
    for j in rest:
        ledger.expect(j.id, JobState.IN_FLIGHT)
    await ledger.check(backend)


async def test_ack_many_acts_in_order_on_a_job_named_twice(backend: QueueBackend) -> None:
    require(backend, "batch_operations")
    jobs = [Job(payload=i) for i in range(4)]
    await backend.enqueue_many(jobs)
    got = await backend.dequeue_many(DequeueOptions(count=4))
    assert len(got) == 4
    stale = msgspec.structs.replace(got[1], lease_token=f"{got[1].lease_token}0")
    results = await backend.ack_many([got[0], got[0], stale, got[1], got[2].id, got[2], got[3]])
    # each entry acts on what the ones before it left: the second ack of a job finds it gone
    assert results == [True, False, False, True, True, False, True]
    assert await backend.length() == 0
    assert (await backend.stats()).in_flight == 0


async def test_enqueue_many_with_an_invalid_job_stores_none(backend: QueueBackend) -> None:
    require(backend, "batch_operations")
    with pytest.raises(InvalidJobError) as info:
        await backend.enqueue_many([Job(payload=1), Job(payload=2, priority=42)])
    assert info.value.field == "priority"
    assert await backend.length() == 0


async def test_ack_many_refuses_a_stale_lease(make_backend: BackendMaker) -> None:
    backend = await make_backend(visibility_timeout=0.5)
    require(backend, "batch_operations")
    await backend.enqueue(Job(payload=1))
    stale = await backend.dequeue()
    assert stale is not None
    await anyio.sleep(0.8)
    fresh = await backend.dequeue(DequeueOptions(timeout=2.0))
    assert fresh is not None
    assert await backend.ack_many([stale]) == [False]
    assert await backend.ack_many([fresh]) == [True]


async def test_dequeue_many_waits_for_the_first_job(make_backend: BackendMaker) -> None:
    consumer, producer = await make_backend(), await make_backend()
    require(consumer, "batch_operations")
    got: list[Job] = []

    async def consume() -> None:
        got.extend(await consumer.dequeue_many(DequeueOptions(count=5, timeout=5.0)))

    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.sleep(0.2)
        await producer.enqueue(Job(payload="x"))
    assert len(got) == 1
    assert time.monotonic() - start < 3.0


async def test_move_between_queues_by_state(make_backend: BackendMaker) -> None:
    source = await make_backend()
    target_name = make_backend.other_queue("dlq")
    target = await make_backend(target_name)
    src, dst = Ledger(), Ledger()
    ready, delayed, leased, dead = (Job(payload=n, max_retries=0) for n in ("r", "d", "l", "x"))
    for job in (leased, dead, ready):
        await source.enqueue(job)
    await source.enqueue(delayed.delayed(60))
    src.add([ready, delayed, leased, dead])
    got_l, got_d = await source.dequeue(), await source.dequeue()
    assert got_l is not None
    assert got_d is not None
    assert (got_l.id, got_d.id) == (leased.id, dead.id)
    await source.nack(got_d, requeue=False, error="bad")
    await source.move(ready.id, target_name)
    await source.move(delayed.id, target_name)
    await source.move(got_l, target_name)  # guarded by its lease
    await source.move(dead.id, target_name)
    for job in (ready, delayed, leased, dead):
        src.remove(job.id, "moved")
        dst.add([job])
    await src.check(source)
    snap = await dst.check(target)
    assert all(j.origin_queue == source.queue and j.queue == target_name for j in snap.values())
    # each arrives ready, at the tail, in the order it was moved
    assert [j.id async for j in target.iter()] == [ready.id, delayed.id, leased.id, dead.id]
    assert snap[dead.id].dead_reason is None
    assert snap[leased.id].lease_token is None
    got = await target.dequeue()
    assert got is not None
    assert got.lease_token


async def test_move_is_safe_to_retry_and_checks_its_arguments(make_backend: BackendMaker) -> None:
    source = await make_backend()
    target_name = make_backend.other_queue()
    target = await make_backend(target_name)
    job = Job(payload=1)
    await source.enqueue(job)
    await source.move(job.id, target_name)
    await source.move(job.id, target_name)  # a retry after an unknown outcome: no error, no copy
    assert await source.length() == 0
    assert await target.length() == 1
    with pytest.raises(JobNotFoundError):
        await source.move("no-such-job", target_name)
    other = Job(payload=2)
    await source.enqueue(other)
    for bad in ("", source.queue):
        with pytest.raises(InvalidJobError) as info:
            await source.move(other.id, bad)
        assert info.value.field == "target_queue"
    assert await source.length() == 1

"""enqueue / dequeue: round trip, ordering, waiting, idempotency, delayed jobs, TTL."""

from __future__ import annotations

import time

import anyio
import pytest

from queuestore import DequeueOptions, Job, JobState, QueueBackend

from .conftest import BackendMaker
from .conservation import Ledger, ids_in, require

pytestmark = pytest.mark.anyio


async def test_round_trip_keeps_every_field(backend: QueueBackend) -> None:
    payload = {"s": "x", "n": 7, "f": 1.5, "b": True, "none": None, "l": [1, "2", [3]], "d": {"k": {"z": 0}}}
    job = Job(
        type="email", payload=payload, priority=3, max_retries=5, metadata={"tenant": "t1"}, tags=["a", "b"]
    )
    assert await backend.enqueue(job) is True
    before = time.time()
    got = await backend.dequeue()
    assert got is not None
    assert (got.id, got.type, got.payload, got.max_retries) == (job.id, "email", payload, 5)
    assert (got.metadata, got.tags, got.created_at) == ({"tenant": "t1"}, ["a", "b"], job.created_at)
    assert got.queue == backend.queue  # stamped
    assert got.state == JobState.IN_FLIGHT
    assert (got.attempt, got.retry_count) == (1, 0)
    assert got.lease_token
    assert got.lease_deadline is not None
    assert got.started_at is not None
    assert got.lease_deadline > before
    await backend.ack(got)
    assert await backend.dequeue() is None


async def test_stored_job_shares_nothing_with_the_caller(backend: QueueBackend) -> None:
    payload = {"items": [1, 2]}
    job = Job(payload=payload)
    await backend.enqueue(job)
    payload["items"].append(3)
    job.priority = 9
    peeked = await backend.peek(0)
    assert peeked is not None
    assert peeked.payload == {"items": [1, 2]}
    assert peeked.priority == 0
    peeked.payload["items"].append(4)
    got = await backend.dequeue()
    assert got is not None
    assert got.payload == {"items": [1, 2]}


async def test_fifo_within_a_priority(backend: QueueBackend) -> None:
    jobs = [Job(payload=i) for i in range(15)]
    for job in jobs:
        await backend.enqueue(job)
    got = [await backend.dequeue() for _ in jobs]
    assert [j.id for j in got if j] == [j.id for j in jobs]


async def test_higher_priority_first_then_fifo(backend: QueueBackend) -> None:
    require(backend, "prioritization")
    jobs = [Job(payload=i, priority=p) for i, p in enumerate([0, 5, 9, 5, 0, 9, 1])]
    for job in jobs:
        await backend.enqueue(job)
    expected = [j.id for j in sorted(jobs, key=lambda j: -j.priority)]  # sort is stable: FIFO kept
    got = [await backend.dequeue() for _ in jobs]
    assert [j.id for j in got if j] == expected


async def test_empty_queue_dequeue_returns_none_within_its_timeout(backend: QueueBackend) -> None:
    assert await backend.dequeue() is None  # timeout 0: no wait
    start = time.monotonic()
    assert await backend.dequeue(DequeueOptions(timeout=0.3)) is None
    elapsed = time.monotonic() - start
    assert 0.2 <= elapsed < 5.0, f"dequeue(timeout=0.3) returned after {elapsed:.2f}s"


async def test_dequeue_waits_for_a_job_enqueued_concurrently(make_backend: BackendMaker) -> None:
    consumer, producer = await make_backend(), await make_backend()
    job = Job(payload="late")
    got: list[Job | None] = []

    async def consume() -> None:
        got.append(await consumer.dequeue(DequeueOptions(timeout=5.0)))

    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.sleep(0.2)
        await producer.enqueue(job)
    assert got[0] is not None
    assert got[0].id == job.id
    assert time.monotonic() - start < 3.0, "the waiting consumer was not woken by the enqueue"


async def test_same_id_twice_is_one_copy_in_any_state(backend: QueueBackend) -> None:
    ledger = Ledger()
    a, b = Job(payload="a", max_retries=0), Job(payload="b")
    assert await backend.enqueue(a) is True
    assert await backend.enqueue(Job(id=a.id, payload="other")) is False
    assert await backend.enqueue(b) is True
    ledger.add([a, b])
    assert await backend.length() == 2
    leased = await backend.dequeue()
    assert leased is not None
    assert leased.id == a.id
    assert await backend.enqueue(a) is False  # in flight
    await backend.nack(leased, requeue=False, error="poison")
    assert await backend.enqueue(a) is False  # dead
    ledger.expect(a.id, JobState.DEAD)
    snap = await ledger.check(backend)
    assert snap[a.id].payload == "a"


async def test_a_mixed_batch_keeps_its_order_and_stores_each_id_once(make_backend: BackendMaker) -> None:
    """One enqueue_many of plain jobs, jobs with an idempotency key, a delayed job, a job with
    a TTL and repeated ids: each id is stored once (the first copy that is stored wins; a copy
    refused by its key leaves the id free), and the ready ones come out in the call's order."""
    backend = await make_backend()
    require(backend, "batch_operations")
    plain = [Job(id=f"p{i}", payload=i) for i in range(6)]
    keyed = Job(id="k1", payload="k1", idempotency_key="key-1")
    keyed_dup = Job(id="k2", payload="k2", idempotency_key="key-1")  # refused by the key
    again_free = Job(id="k2", payload="k2-free")  # the id k2 was not stored: this one is
    delayed = Job(id="d1", payload="d").delayed(30)
    ttl = Job(id="t1", payload="t").with_ttl(300)
    batch = [
        plain[0], plain[1], Job(id="p0", payload="dup"), keyed, plain[2], keyed_dup, again_free,
        delayed, plain[3], ttl, plain[4], Job(id="p4", payload="dup"), plain[5], Job(id="t1", payload="dup"),
    ]  # fmt: skip
    dedups = backend.capabilities().idempotent_enqueue
    expected = [True, True, False, True, True, not dedups, dedups, True, True, True, True, False, True, False]
    assert await backend.enqueue_many(batch) == expected
    ready_ids = ["p0", "p1", "k1", "p2", "k2", "p3", "t1", "p4", "p5"]
    got = await backend.dequeue_many(DequeueOptions(count=20))
    assert [j.id for j in got] == ready_ids
    assert {j.id: j.payload for j in got}["k2"] == ("k2-free" if dedups else "k2")
    assert all(j.payload != "dup" for j in got)
    assert await backend.length() == 1  # the delayed job
    assert await backend.ack_many(got) == [True] * len(got)


async def test_idempotency_key_dedups_other_ids_within_the_window(make_backend: BackendMaker) -> None:
    backend = await make_backend(idempotency_window=0.5)
    require(backend, "idempotent_enqueue")
    first, dup = Job(payload=1, idempotency_key="order-7"), Job(payload=2, idempotency_key="order-7")
    assert await backend.enqueue(first) is True
    assert await backend.enqueue(dup) is False
    assert await backend.enqueue(Job(payload=3, idempotency_key="order-8")) is True
    assert await backend.length() == 2
    await anyio.sleep(0.8)
    later = Job(payload=4, idempotency_key="order-7")
    assert await backend.enqueue(later) is True, "the key still dedups after its window"
    assert await backend.length() == 3


async def test_delayed_job_is_invisible_until_due(backend: QueueBackend) -> None:
    ledger = Ledger()
    job = Job(payload="later").delayed(1.0)  # long enough to check it while delayed
    assert await backend.enqueue(job) is True
    ledger.add([job], JobState.DELAYED)
    assert await backend.dequeue() is None
    assert await backend.peek(0) is None
    assert await backend.length() == 1
    assert await ids_in(backend, JobState.DELAYED) == [job.id]
    await ledger.check(backend)
    got = await backend.dequeue(DequeueOptions(timeout=3.0))
    assert got is not None
    assert got.id == job.id
    assert time.time() >= job.available_at - 0.05  # type: ignore[operator]


async def test_delayed_jobs_are_walked_by_due_time(backend: QueueBackend) -> None:
    now = time.time()
    jobs = [Job(payload=i, available_at=now + d) for i, d in enumerate([50, 30, 40])]
    for job in jobs:
        await backend.enqueue(job)
    assert await ids_in(backend, JobState.DELAYED) == [jobs[1].id, jobs[2].id, jobs[0].id]


async def test_waiting_job_past_its_ttl_is_dropped_and_counted(backend: QueueBackend) -> None:
    require(backend, "time_to_live")
    ledger = Ledger()
    doomed, kept, taken = Job(payload="x").with_ttl(0.8), Job(payload="y"), Job(payload="z").with_ttl(0.8)
    await backend.enqueue(taken)
    await backend.enqueue(doomed)
    await backend.enqueue(kept)
    ledger.add([taken, doomed, kept])
    got = await backend.dequeue()
    assert got is not None
    assert got.id == taken.id
    ledger.expect(taken.id, JobState.IN_FLIGHT)
    await anyio.sleep(1.1)
    nxt = await backend.dequeue()
    assert nxt is not None
    assert nxt.id == kept.id, "an expired job was delivered"
    ledger.expect(kept.id, JobState.IN_FLIGHT)
    ledger.remove(doomed.id, "expired")
    await ledger.check(backend)
    assert (await backend.stats()).total_expired >= 1
    await backend.ack(got)  # an in-flight job is not dropped by its TTL
    ledger.remove(taken.id)
    await ledger.check(backend)


async def test_length_counts_ready_and_delayed_only(backend: QueueBackend) -> None:
    await backend.enqueue(Job(payload=1))
    await backend.enqueue(Job(payload=2))
    await backend.enqueue(Job(payload=3).delayed(30))
    assert await backend.length() == 3
    got = await backend.dequeue()
    assert got is not None
    assert await backend.length() == 2
    await backend.nack(got, requeue=False)
    assert await backend.length() == 2

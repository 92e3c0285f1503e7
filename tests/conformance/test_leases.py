"""Leases: deadline, expiry and redelivery, extension, stale holders, concurrent reclaimers.

Leases here are half a second long; the sleeps that let them expire are 0.8 s or more.
"""

from __future__ import annotations

import time

import anyio
import pytest

from queuestore import (
    DequeueOptions,
    Job,
    JobNotFoundError,
    JobState,
    LeaseLostError,
    QueueBackend,
)

from .conftest import BackendMaker
from .conservation import Ledger

pytestmark = pytest.mark.anyio

LEASE = 0.5
EXPIRE = 0.8  # sleep this long for a LEASE-long lease to be over


async def test_lease_deadline_is_now_plus_visibility_timeout(make_backend: BackendMaker) -> None:
    backend = await make_backend(visibility_timeout=20)
    await backend.enqueue(Job(payload=1))
    await backend.enqueue(Job(payload=2))
    before = time.time()
    got = await backend.dequeue()
    assert got is not None
    assert got.lease_deadline is not None
    assert before + 19 <= got.lease_deadline <= time.time() + 21
    short = await backend.dequeue(DequeueOptions(visibility_timeout=3))  # per-call override
    assert short is not None
    assert short.lease_deadline is not None
    assert before + 2 <= short.lease_deadline <= time.time() + 4
    assert got.lease_token != short.lease_token


async def test_expired_lease_is_redelivered_with_retry_and_attempt_plus_one(
    make_backend: BackendMaker,
) -> None:
    backend = await make_backend(visibility_timeout=LEASE)
    ledger = Ledger()
    job = Job(payload="slow", max_retries=3)
    await backend.enqueue(job)
    ledger.add([job])
    first = await backend.dequeue()
    assert first is not None
    assert (first.attempt, first.retry_count) == (1, 0)
    ledger.expect(job.id, JobState.IN_FLIGHT)
    await ledger.check(backend)
    await anyio.sleep(EXPIRE)
    second = await backend.dequeue(DequeueOptions(timeout=2.0))
    assert second is not None
    assert second.id == job.id
    assert (second.attempt, second.retry_count) == (2, 1)
    assert second.lease_token != first.lease_token
    assert second.last_error == "lease expired"
    await backend.ack(second)
    ledger.remove(job.id)
    await ledger.check(backend)


async def test_reclaimed_job_goes_to_the_tail_of_its_priority(make_backend: BackendMaker) -> None:
    backend = await make_backend(visibility_timeout=LEASE)
    a, b = Job(payload="a"), Job(payload="b")
    await backend.enqueue(a)
    got = await backend.dequeue()
    assert got is not None
    assert got.id == a.id
    await backend.enqueue(b)
    await anyio.sleep(EXPIRE)
    order = [await backend.dequeue(), await backend.dequeue()]
    assert [j.id for j in order if j] == [b.id, a.id]


async def test_extend_lease_keeps_it_past_the_original_deadline(make_backend: BackendMaker) -> None:
    holder, other = await make_backend(visibility_timeout=0.6), await make_backend(visibility_timeout=0.6)
    job = Job(payload=1)
    await holder.enqueue(job)
    got = await holder.dequeue()
    assert got is not None
    assert got.lease_deadline is not None
    await anyio.sleep(0.3)
    deadline = await holder.extend_lease(got, 2.0)
    assert deadline >= got.lease_deadline + 1.0
    assert deadline <= time.time() + 2.5
    await anyio.sleep(0.6)  # past the original deadline
    assert await other.dequeue() is None, "an extended lease was reclaimed"
    await holder.ack(got)  # same token after extension
    assert await other.length() == 0


async def test_extend_lease_by_id_and_on_a_job_not_in_flight(backend: QueueBackend) -> None:
    job = Job(payload=1)
    await backend.enqueue(job)
    with pytest.raises(JobNotFoundError):
        await backend.extend_lease(job.id, 5)  # ready, not leased
    with pytest.raises(JobNotFoundError):
        await backend.extend_lease("no-such-job", 5)
    got = await backend.dequeue()
    assert got is not None
    assert await backend.extend_lease(got.id, 5) >= time.time() + 4


async def test_stale_holder_is_refused_and_new_holder_acks(make_backend: BackendMaker) -> None:
    stale_side = await make_backend(visibility_timeout=LEASE)
    new_side = await make_backend(visibility_timeout=LEASE)
    other_queue = make_backend.other_queue()
    ledger = Ledger()
    job = Job(payload="contended", max_retries=5)
    await stale_side.enqueue(job)
    ledger.add([job])
    stale = await stale_side.dequeue()
    assert stale is not None
    await anyio.sleep(EXPIRE)
    fresh = await new_side.dequeue(DequeueOptions(timeout=2.0))
    assert fresh is not None
    assert fresh.id == job.id
    assert fresh.lease_token != stale.lease_token
    with pytest.raises(LeaseLostError):
        await stale_side.ack(stale)
    with pytest.raises(LeaseLostError):
        await stale_side.nack(stale, requeue=True)
    with pytest.raises(LeaseLostError):
        await stale_side.nack(stale, requeue=False)
    with pytest.raises(LeaseLostError):
        await stale_side.move(stale, other_queue)
    with pytest.raises(LeaseLostError):
        await stale_side.extend_lease(stale, 10)
    ledger.expect(job.id, JobState.IN_FLIGHT)
    snap = await ledger.check(new_side)
    assert snap[job.id].attempt == 2
    assert snap[job.id].retry_count == 1
    await new_side.ack(fresh)
    ledger.remove(job.id)
    await ledger.check(new_side)
    with pytest.raises(JobNotFoundError):
        await stale_side.ack(stale)
    other = await make_backend(other_queue)
    assert await other.length() == 0


async def test_ack_by_bare_id_acts_on_the_current_lease(make_backend: BackendMaker) -> None:
    backend = await make_backend(visibility_timeout=LEASE)
    job = Job(payload=1)
    await backend.enqueue(job)
    assert await backend.dequeue() is not None
    await anyio.sleep(EXPIRE)
    again = await backend.dequeue(DequeueOptions(timeout=2.0))
    assert again is not None
    assert again.attempt == 2
    await backend.ack(job.id)  # unguarded: acks the current (second) lease
    assert await backend.length() == 0
    assert (await backend.stats()).in_flight == 0


async def test_expired_lease_past_max_retries_is_dead_lettered(make_backend: BackendMaker) -> None:
    backend = await make_backend(visibility_timeout=LEASE)
    ledger = Ledger()
    job = Job(payload="crashes the worker", max_retries=1)
    await backend.enqueue(job)
    ledger.add([job])
    for attempt in (1, 2):
        got = await backend.dequeue(DequeueOptions(timeout=2.0))
        assert got is not None
        assert got.attempt == attempt
        await anyio.sleep(EXPIRE)
    assert await backend.dequeue() is None
    ledger.expect(job.id, JobState.DEAD)
    dead = (await ledger.check(backend))[job.id]
    assert dead.dead_reason == "lease expired"
    assert (dead.attempt, dead.retry_count) == (2, 1)
    assert dead.origin_queue == backend.queue
    assert dead.dead_at is not None
    assert dead.lease_token is None


async def test_concurrent_reclaimers_deliver_an_expired_job_once(make_backend: BackendMaker) -> None:
    first = await make_backend(visibility_timeout=LEASE)
    others = [await make_backend(visibility_timeout=5) for _ in range(4)]
    job = Job(payload="once")
    await first.enqueue(job)
    assert await first.dequeue() is not None
    await anyio.sleep(EXPIRE)
    got: list[Job] = []

    async def take(b: QueueBackend) -> None:
        j = await b.dequeue(DequeueOptions(timeout=0.5))
        if j is not None:
            got.append(j)

    async with anyio.create_task_group() as tg:
        for b in others:
            tg.start_soon(take, b)
    assert len(got) == 1, f"the reclaimed job was delivered {len(got)} times"
    assert got[0].attempt == 2


async def test_maintenance_loop_reclaims_while_nobody_dequeues(make_backend: BackendMaker) -> None:
    backend = await make_backend(visibility_timeout=LEASE, reclaim_interval=0.1)
    job = Job(payload=1)
    async with backend:
        await backend.enqueue(job)
        assert await backend.dequeue() is not None
        await anyio.sleep(EXPIRE + 0.3)
        ready = [j async for j in backend.iter()]
        assert [j.id for j in ready] == [job.id]
        assert ready[0].retry_count == 1
    assert backend.closed

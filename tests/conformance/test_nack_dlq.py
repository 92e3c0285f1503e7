"""nack (requeue, delay, dead-letter), the DLQ after max_retries, and ack of what is not leased."""

from __future__ import annotations

import anyio
import pytest

from queuestore import DequeueOptions, Job, JobNotFoundError, JobState, QueueBackend

from .conservation import Ledger, ids_in

pytestmark = pytest.mark.anyio


async def test_nack_requeue_counts_a_retry_and_keeps_the_error(backend: QueueBackend) -> None:
    ledger = Ledger()
    job = Job(payload=1, max_retries=3)
    await backend.enqueue(job)
    ledger.add([job])
    got = await backend.dequeue()
    assert got is not None
    await backend.nack(got, requeue=True, error="timeout talking to smtp")
    snap = await ledger.check(backend)
    assert snap[job.id].retry_count == 1
    assert snap[job.id].last_error == "timeout talking to smtp"
    again = await backend.dequeue()
    assert again is not None
    assert again.id == job.id
    assert (again.attempt, again.retry_count, again.last_error) == (2, 1, "timeout talking to smtp")


async def test_nack_with_delay_holds_the_job_back(backend: QueueBackend) -> None:
    ledger = Ledger()
    job = Job(payload=1)
    await backend.enqueue(job)
    ledger.add([job])
    got = await backend.dequeue()
    assert got is not None
    await backend.nack(got, delay=1.0)
    ledger.expect(job.id, JobState.DELAYED)
    await ledger.check(backend)
    assert await backend.dequeue() is None
    assert await backend.peek(0) is None
    assert await backend.length() == 1
    again = await backend.dequeue(DequeueOptions(timeout=3.0))
    assert again is not None
    assert again.id == job.id
    assert again.retry_count == 1


async def test_nack_without_requeue_dead_letters(backend: QueueBackend) -> None:
    ledger = Ledger()
    job = Job(payload="poison", max_retries=10)
    await backend.enqueue(job)
    ledger.add([job])
    got = await backend.dequeue()
    assert got is not None
    await backend.nack(got, requeue=False, error="unparseable")
    ledger.expect(job.id, JobState.DEAD)
    dead = (await ledger.check(backend))[job.id]
    assert dead.dead_reason == "unparseable"
    assert dead.last_error == "unparseable"
    assert dead.origin_queue == backend.queue
    assert dead.dead_at is not None
    assert await backend.dequeue() is None


async def test_dead_letter_after_max_retries(backend: QueueBackend) -> None:
    ledger = Ledger()
    job, bystander = Job(payload="flaky", max_retries=2), Job(payload="fine")
    await backend.enqueue(job)
    ledger.add([job])
    for i in range(3):
        got = await backend.dequeue()
        assert got is not None
        assert got.id == job.id
        assert got.attempt == i + 1
        await backend.nack(got, requeue=True, error=f"boom {i}")
    await backend.enqueue(bystander)
    ledger.add([bystander])
    ledger.expect(job.id, JobState.DEAD)
    dead = (await ledger.check(backend))[job.id]
    assert dead.dead_reason == "boom 2"
    assert dead.last_error == "boom 2"
    assert (dead.attempt, dead.retry_count) == (3, 2)
    assert dead.origin_queue == backend.queue
    assert dead.dead_at is not None
    stats = await backend.stats()
    assert stats.dead == 1
    assert stats.total_dead_lettered >= 1
    assert stats.total_nacked >= 3
    nxt = await backend.dequeue()
    assert nxt is not None
    assert nxt.id == bystander.id


async def test_nack_past_max_retries_with_delay_still_dead_letters(backend: QueueBackend) -> None:
    job = Job(payload=1, max_retries=0)
    await backend.enqueue(job)
    got = await backend.dequeue()
    assert got is not None
    await backend.nack(got, delay=30, error="again")
    assert await ids_in(backend, JobState.DEAD) == [job.id]
    assert await backend.length() == 0


async def test_ack_and_nack_need_a_job_in_flight(backend: QueueBackend) -> None:
    ready = Job(payload=1)
    await backend.enqueue(ready)
    for op in (backend.ack(ready.id), backend.nack(ready.id), backend.ack("no-such-job")):
        with pytest.raises(JobNotFoundError):
            await op
    got = await backend.dequeue()
    assert got is not None
    await backend.ack(got)
    with pytest.raises(JobNotFoundError):
        await backend.ack(got.id)  # acked: gone
    with pytest.raises(JobNotFoundError):
        await backend.nack(got.id)
    assert await backend.length() == 0


async def test_dead_jobs_are_walked_in_the_order_they_died(backend: QueueBackend) -> None:
    jobs = [Job(payload=i, max_retries=0) for i in range(3)]
    for job in jobs:
        await backend.enqueue(job)
    leased = [await backend.dequeue() for _ in jobs]
    for got in reversed(leased):
        assert got is not None
        await backend.nack(got, requeue=False)
        await anyio.sleep(0.01)
    assert await ids_in(backend, JobState.DEAD) == [j.id for j in reversed(jobs)]

"""Concurrent consumers and producers: no job delivered twice, none lost."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from queuestore import DequeueOptions, Job, JobState

from .conftest import BackendMaker
from .conservation import Ledger

pytestmark = pytest.mark.anyio


async def test_concurrent_consumers_never_share_a_job(make_backend: BackendMaker) -> None:
    producer = await make_backend()
    consumers = [await make_backend() for _ in range(4)]
    jobs = [Job(payload=i) for i in range(80)]
    for job in jobs:
        await producer.enqueue(job)
    delivered: list[str] = []

    async def consume(i: int) -> None:
        backend = consumers[i]
        while (job := await backend.dequeue(DequeueOptions(timeout=0.3))) is not None:
            delivered.append(job.id)
            await anyio.lowlevel.checkpoint()  # let the others interleave
            await backend.ack(job)

    async with anyio.create_task_group() as tg:
        for i in range(len(consumers)):
            tg.start_soon(consume, i)
    assert len(delivered) == len(set(delivered)), "a job was delivered to two consumers"
    assert sorted(delivered) == sorted(j.id for j in jobs)
    ledger = Ledger()
    ledger.add(jobs)
    for job in jobs:
        ledger.remove(job.id)
    await ledger.check(producer)


async def test_producers_and_failing_consumers_conserve_every_job(make_backend: BackendMaker) -> None:
    producers = [await make_backend() for _ in range(2)]
    consumers = [await make_backend(visibility_timeout=5) for _ in range(3)]
    ledger = Ledger()
    outcome: dict[str, JobState | None] = {}
    jobs = [Job(payload=i, max_retries=1) for i in range(60)]
    ledger.add(jobs, None)

    async def produce(part: list[Job], backend_index: int) -> None:
        for job in part:
            assert await producers[backend_index].enqueue(job)
            await anyio.lowlevel.checkpoint()

    async def consume(i: int) -> None:
        backend = consumers[i]
        while (job := await backend.dequeue(DequeueOptions(timeout=0.4))) is not None:
            n = int(job.payload)
            if n % 5 == 0:
                await backend.nack(job, requeue=True, error="transient")  # back, then dead after one retry
            elif n % 7 == 0:
                await backend.nack(job, requeue=False, error="poison")
            elif n % 11 == 0:
                outcome[job.id] = JobState.IN_FLIGHT  # kept leased: still in flight at the end
                continue
            else:
                await backend.ack(job)
                outcome[job.id] = None

    async with anyio.create_task_group() as tg:
        tg.start_soon(produce, jobs[::2], 0)
        tg.start_soon(produce, jobs[1::2], 1)
        for i in range(len(consumers)):
            tg.start_soon(consume, i)
    for job in jobs:
        n = int(job.payload)
        if n % 5 == 0 or n % 7 == 0:
            ledger.expect(job.id, JobState.DEAD)
        elif outcome.get(job.id) is JobState.IN_FLIGHT:
            ledger.expect(job.id, JobState.IN_FLIGHT)
        else:
            assert outcome.get(job.id, "missing") is None, f"job {n} was never processed"
            ledger.remove(job.id)
    await ledger.check(producers[0])

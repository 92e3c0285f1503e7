"""The migration SPI: hold / held / release / restore and import_jobs, with conservation."""

from __future__ import annotations

import time

import pytest

from queuestore import InvalidJobError, Job, JobState, QueueBackend

from .conftest import BackendMaker
from .conservation import Ledger, ids_in

pytestmark = pytest.mark.anyio


async def test_hold_then_restore_puts_jobs_back_in_order(backend: QueueBackend) -> None:
    ledger = Ledger()
    jobs = [Job(payload=i, max_retries=0) for i in range(6)]
    for job in jobs:
        await backend.enqueue(job)
    ledger.add(jobs)
    dead = await backend.dequeue()
    assert dead is not None
    await backend.nack(dead, requeue=False)
    ledger.expect(dead.id, JobState.DEAD)
    later = Job(payload="later").delayed(60)
    await backend.enqueue(later)
    ledger.add([later], JobState.DELAYED)
    order_before = [j.id async for j in backend.iter()]

    held = await backend.migration_hold("m1", JobState.READY, 3)
    assert [j.id for j in held] == [j.id for j in jobs[1:4]]
    assert all(j.state == JobState.READY for j in held)
    held += await backend.migration_hold("m1", JobState.DELAYED, 10)
    held += await backend.migration_hold("m1", JobState.DEAD, 10)
    assert [j.id for j in held[3:]] == [later.id, dead.id]
    assert [j.state for j in held[3:]] == [JobState.DELAYED, JobState.DEAD]
    assert [j.id for j in await backend.migration_held("m1")] == [j.id for j in held]
    assert [j.id for j in await backend.migration_held("m1", count=2)] == [j.id for j in held[:2]]
    assert await backend.length() == 2  # jobs 4 and 5
    assert await backend.enqueue(Job(id=jobs[1].id, payload="dup")) is False  # held is still stored
    nxt = await backend.peek(0)
    assert nxt is not None
    assert nxt.id == jobs[4].id

    assert await backend.migration_restore("m1") == 5
    assert await backend.migration_held("m1") == []
    assert [j.id async for j in backend.iter()] == order_before
    await ledger.check(backend)


async def test_hold_then_release_lets_jobs_go(backend: QueueBackend) -> None:
    ledger = Ledger()
    jobs = [Job(payload=i) for i in range(4)]
    for job in jobs:
        await backend.enqueue(job)
    ledger.add(jobs)
    held = await backend.migration_hold("m2", JobState.READY, 3)
    assert await backend.migration_release("m2", [held[0].id, held[1].id, "never-held"]) == 2
    ledger.remove(held[0].id, "migrated")
    ledger.remove(held[1].id, "migrated")
    assert await backend.migration_restore("m2") == 1  # only the unreleased one comes back
    await ledger.check(backend)
    assert [j.id async for j in backend.iter()] == [jobs[2].id, jobs[3].id]
    with pytest.raises(InvalidJobError):
        await backend.migration_hold("m3", JobState.IN_FLIGHT, 1)


async def test_import_jobs_keeps_each_state_and_is_idempotent(make_backend: BackendMaker) -> None:
    backend = await make_backend(make_backend.other_queue("imported"))
    now = time.time()
    ready = [Job(payload=i, queue="old-name", state=JobState.READY) for i in range(3)]
    delayed = Job(payload="d", state=JobState.DELAYED, available_at=now + 60)
    dead = Job(payload="x", state=JobState.DEAD, dead_reason="poison", dead_at=now, origin_queue="old-name")
    batch = [*ready, delayed, dead]
    assert await backend.import_jobs(batch) == [True] * 5
    assert await backend.import_jobs(batch[:2]) == [False, False]
    ledger = Ledger()
    ledger.add(ready)
    ledger.add([delayed], JobState.DELAYED)
    ledger.add([dead], JobState.DEAD)
    snap = await ledger.check(backend)
    assert await ids_in(backend, JobState.READY) == [j.id for j in ready]
    assert snap[dead.id].dead_reason == "poison"
    assert snap[ready[0].id].queue == backend.queue
    with pytest.raises(InvalidJobError):
        await backend.import_jobs([Job(payload=1, state=JobState.IN_FLIGHT)])

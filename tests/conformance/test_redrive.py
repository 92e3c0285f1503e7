"""redrive: dead jobs back to ready (or to another queue), retry_count reset, history kept."""

from __future__ import annotations

import time

import pytest
from redis.crc import key_slot

from queuestore import ALL, InvalidJobError, Job, JobState, QueueBackend

from .conftest import BackendMaker
from .conservation import Ledger, ids_in, snapshot

pytestmark = pytest.mark.anyio


async def kill(backend: QueueBackend, job: Job, *, retries: int = 0, error: str = "boom") -> None:
    """Enqueue ``job``, nack it with requeue ``retries`` times, then dead-letter it."""
    await backend.enqueue(job)
    for _ in range(retries):
        got = await backend.dequeue()
        assert got is not None
        assert got.id == job.id
        await backend.nack(got, requeue=True, delay=0, error=f"{error} (retried)")
    got = await backend.dequeue()
    assert got is not None
    assert got.id == job.id
    await backend.nack(got, requeue=False, error=error)


def other_slot_queue(make_backend: BackendMaker) -> str:
    """A fresh queue name; on a cluster, one whose hash slot differs from the test's queue."""
    while True:
        name = make_backend.other_queue("redrive-to")
        if make_backend.target.topology != "cluster" or key_slot(name.encode()) != key_slot(
            make_backend.queue.encode()
        ):
            return name


async def test_redrive_one_resets_retry_count_keeps_history_and_goes_last(backend: QueueBackend) -> None:
    ledger = Ledger()
    dead = Job(payload="d", max_retries=5)
    await kill(backend, dead, retries=2, error="smtp down")
    ledger.add([dead], JobState.DEAD)
    before = (await snapshot(backend))[dead.id]
    assert (before.retry_count, before.attempt, before.last_error) == (2, 3, "smtp down")
    waiting = [Job(payload=i) for i in range(2)]
    await backend.enqueue_many(waiting)
    ledger.add(waiting)

    assert await backend.redrive([dead.id]) == 1
    ledger.expect(dead.id, JobState.READY)
    snap = await ledger.check(backend)
    job = snap[dead.id]
    assert job.retry_count == 0, "retry_count is reset"
    assert (job.attempt, job.last_error) == (3, "smtp down"), "the attempt history is kept"
    assert job.dead_reason is None
    assert job.dead_at is None
    assert await ids_in(backend, JobState.READY) == [waiting[0].id, waiting[1].id, dead.id], "at the back"
    got = [await backend.dequeue() for _ in range(3)]
    assert [g.id for g in got if g is not None] == [waiting[0].id, waiting[1].id, dead.id]
    assert got[2] is not None
    assert got[2].attempt == 4


async def test_redrive_many_counts_only_dead_jobs(backend: QueueBackend) -> None:
    ledger = Ledger()
    dead = [Job(payload=i, max_retries=0) for i in range(3)]
    for job in dead:
        await kill(backend, job)
    ledger.add(dead, JobState.DEAD)
    ready = Job(payload="r")
    await backend.enqueue(ready)
    ledger.add([ready])
    assert await ids_in(backend, JobState.DEAD) == [j.id for j in dead]

    ids = [dead[2].id, ready.id, "no-such-job", dead[0].id, dead[2].id]
    assert await backend.redrive(ids) == 2, "a ready job, an unknown id and a repeat are not counted"
    ledger.expect(dead[0].id, JobState.READY)
    ledger.expect(dead[2].id, JobState.READY)
    await ledger.check(backend)
    assert await backend.redrive([dead[0].id]) == 0, "no longer dead"
    assert await backend.redrive([]) == 0
    assert await backend.redrive(ALL) == 1
    ledger.expect(dead[1].id, JobState.READY)
    await ledger.check(backend)
    assert await backend.redrive(ALL) == 0


async def test_redrive_all_walks_pages(backend: QueueBackend) -> None:
    ledger = Ledger()
    n = 1203  # more than two pages of 500
    now = time.time()
    jobs = [
        Job(id=f"dead-{i:05d}", payload=i, priority=i % 3, retry_count=1, max_retries=1, attempt=2)
        for i in range(n)
    ]
    for job in jobs:
        job.state, job.dead_at, job.dead_reason = JobState.DEAD, now, "imported"
    for i in range(0, n, 400):
        assert await backend.import_jobs(jobs[i : i + 400]) == [True] * len(jobs[i : i + 400])
    ledger.add(jobs, JobState.DEAD)
    await ledger.check(backend)

    assert await backend.redrive(ALL) == n
    for job in jobs:
        ledger.expect(job.id, JobState.READY)
    snap = await ledger.check(backend)
    assert {j.retry_count for j in snap.values()} == {0}
    assert {j.attempt for j in snap.values()} == {2}
    assert (await backend.stats()).dead == 0


async def test_redrive_to_another_queue(make_backend: BackendMaker) -> None:
    backend = await make_backend()
    target_queue = other_slot_queue(make_backend)
    target = await make_backend(target_queue)
    ledger, moved = Ledger(), Ledger()
    dead = [Job(payload=i, max_retries=3) for i in range(3)]
    for job in dead:
        await kill(backend, job, retries=1, error="bad input")
    ledger.add(dead, JobState.DEAD)
    ready = Job(payload="stays")
    await backend.enqueue(ready)
    ledger.add([ready])

    assert await backend.redrive([dead[0].id, ready.id, "no-such-job"], to_queue=target_queue) == 1
    ledger.remove(dead[0].id, "moved")
    moved.add([dead[0]])
    await ledger.check(backend)
    got = (await moved.check(target))[dead[0].id]
    assert (got.retry_count, got.attempt, got.last_error) == (0, 2, "bad input")
    assert got.queue == target_queue
    assert got.origin_queue == backend.queue
    assert await backend.redrive([dead[0].id], to_queue=target_queue) == 0, "not dead here any more"

    assert await backend.redrive(ALL, to_queue=target_queue) == 2
    for job in dead[1:]:
        ledger.remove(job.id, "moved")
        moved.add([job])
    await ledger.check(backend)
    snap = await moved.check(target)
    assert {snap[j.id].retry_count for j in dead} == {0}
    assert await ids_in(target, JobState.READY) == [j.id for j in dead]
    taken = await target.dequeue()
    assert taken is not None
    assert taken.id == dead[0].id
    await target.ack(taken)


async def test_redrive_refuses_bad_arguments(backend: QueueBackend) -> None:
    job = Job(payload=1, max_retries=0)
    await kill(backend, job)
    with pytest.raises(InvalidJobError) as info:
        await backend.redrive(job.id)  # type: ignore[arg-type]  # a bare string, not a list
    assert info.value.field == "job_ids"
    with pytest.raises(InvalidJobError) as info:
        await backend.redrive([job.id], to_queue="")
    assert info.value.field == "to_queue"
    assert await ids_in(backend, JobState.DEAD) == [job.id], "nothing changed"

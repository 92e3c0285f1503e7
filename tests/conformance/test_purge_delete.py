"""purge (ready, delayed, dead; in flight refused) and delete (any state, a leased job too)."""

from __future__ import annotations

import time

import pytest

from queuestore import (
    ALL,
    DequeueOptions,
    InvalidJobError,
    Job,
    JobState,
    LeaseLostError,
    QueueBackend,
)

from .conftest import BackendMaker
from .conservation import Ledger, ids_in

pytestmark = pytest.mark.anyio


async def one_of_each(backend: QueueBackend, ledger: Ledger) -> dict[JobState, list[Job]]:
    """Three ready, two delayed, two dead and one leased job (the leased one is returned last)."""
    ready = [Job(payload=f"r{i}") for i in range(3)]
    delayed = [Job(payload=f"d{i}").delayed(300) for i in range(2)]
    dead = [Job(payload=f"x{i}", max_retries=0) for i in range(2)]
    leased = Job(payload="leased")
    for job in [*dead, leased]:
        await backend.enqueue(job)
        got = await backend.dequeue()
        assert got is not None
        assert got.id == job.id
        if job is not leased:
            await backend.nack(got, requeue=False, error="poison")
    await backend.enqueue_many([*ready, *delayed])
    ledger.add(ready)
    ledger.add(delayed, JobState.DELAYED)
    ledger.add(dead, JobState.DEAD)
    ledger.add([leased], JobState.IN_FLIGHT)
    await ledger.check(backend)
    return {
        JobState.READY: ready,
        JobState.DELAYED: delayed,
        JobState.DEAD: dead,
        JobState.IN_FLIGHT: [leased],
    }


async def test_purge_each_state_counts_what_it_removed(backend: QueueBackend) -> None:
    ledger = Ledger()
    jobs = await one_of_each(backend, ledger)
    ready, delayed, dead, leased = (
        jobs[s] for s in (JobState.READY, JobState.DELAYED, JobState.DEAD, JobState.IN_FLIGHT)
    )
    acked_before = (await backend.stats()).total_acked

    # by id: only the ids in that state count
    assert await backend.purge(JobState.READY, [ready[1].id, delayed[0].id, leased[0].id, "nope"]) == 1
    ledger.remove(ready[1].id, "purged")
    await ledger.check(backend)
    assert await backend.purge(JobState.DELAYED, [delayed[0].id, ready[0].id]) == 1
    ledger.remove(delayed[0].id, "purged")
    assert await backend.purge(JobState.DEAD, [dead[1].id, dead[1].id]) == 1
    ledger.remove(dead[1].id, "purged")
    await ledger.check(backend)

    # ALL, state by state
    assert await backend.purge(JobState.READY, ALL) == 2
    for job in (ready[0], ready[2]):
        ledger.remove(job.id, "purged")
    assert await backend.purge(JobState.DELAYED, ALL) == 1
    ledger.remove(delayed[1].id, "purged")
    assert await backend.purge(JobState.DEAD, ALL) == 1
    ledger.remove(dead[0].id, "purged")
    await ledger.check(backend)
    for state in (JobState.READY, JobState.DELAYED, JobState.DEAD):
        assert await backend.purge(state, ALL) == 0

    stats = await backend.stats()
    assert (stats.queue_depth, stats.delayed, stats.in_flight, stats.dead) == (0, 0, 1, 0)
    assert stats.total_acked == acked_before, "purged jobs are not acked"
    assert await backend.enqueue(Job(id=ready[0].id, payload="again")) is True, "a purged id is gone"


async def test_purge_in_flight_is_refused(backend: QueueBackend) -> None:
    ledger = Ledger()
    jobs = await one_of_each(backend, ledger)
    for state in (JobState.IN_FLIGHT, "leased"):
        with pytest.raises(InvalidJobError) as info:
            await backend.purge(state, ALL)  # type: ignore[arg-type]
        assert info.value.field == "state"
    with pytest.raises(InvalidJobError) as info:
        await backend.purge(JobState.IN_FLIGHT, [jobs[JobState.IN_FLIGHT][0].id])
    assert info.value.field == "state"
    with pytest.raises(InvalidJobError) as info:
        await backend.purge(JobState.READY, "not-a-list")  # type: ignore[arg-type]
    assert info.value.field == "job_ids"
    await ledger.check(backend)


async def test_purge_all_walks_pages(backend: QueueBackend) -> None:
    ledger = Ledger()
    n = 1107  # more than two pages of 500
    jobs = [Job(id=f"p-{i:05d}", payload=i, priority=i % 4) for i in range(n)]
    later = time.time() + 600
    delayed = [Job(id=f"pd-{i:05d}", payload=i, available_at=later + i) for i in range(n)]
    for i in range(0, n, 400):
        assert all(await backend.import_jobs(jobs[i : i + 400]))
        assert all(await backend.enqueue_many(delayed[i : i + 400]))
    ledger.add(jobs)
    ledger.add(delayed, JobState.DELAYED)
    await ledger.check(backend)
    assert await backend.purge(JobState.READY, ALL) == n
    assert await backend.purge(JobState.DELAYED, ALL) == n
    for job in [*jobs, *delayed]:
        ledger.remove(job.id, "purged")
    await ledger.check(backend)
    assert await backend.length() == 0


async def test_delete_in_each_state(backend: QueueBackend) -> None:
    ledger = Ledger()
    jobs = await one_of_each(backend, ledger)
    for state in (JobState.READY, JobState.DELAYED, JobState.DEAD):
        job = jobs[state][0]
        assert await backend.delete(job.id) is True
        ledger.remove(job.id, "deleted")
        await ledger.check(backend)
        assert await backend.delete(job.id) is False, "deleted already"
    assert await backend.delete("no-such-job") is False
    with pytest.raises(InvalidJobError) as info:
        await backend.delete("")
    assert info.value.field == "job_id"
    assert await ids_in(backend, JobState.READY) == [j.id for j in jobs[JobState.READY][1:]]
    await ledger.check(backend)


def make_other_queue(backend: QueueBackend) -> str:
    return f"{backend.queue}-elsewhere"


async def test_delete_a_leased_job_fences_its_holder(make_backend: BackendMaker) -> None:
    backend = await make_backend()
    ledger = Ledger()
    jobs = [Job(payload=i) for i in range(5)]
    await backend.enqueue_many(jobs)
    ledger.add(jobs)
    held = [await backend.dequeue(DequeueOptions(visibility_timeout=30)) for _ in jobs]
    assert [h.id for h in held if h is not None] == [j.id for j in jobs]
    for job in jobs:
        ledger.expect(job.id, JobState.IN_FLIGHT)
    for h in held:
        assert h is not None
        assert await backend.delete(h.id) is True
        ledger.remove(h.id, "deleted")
    await ledger.check(backend)
    a, b, c, d, e = (h for h in held if h is not None)
    with pytest.raises(LeaseLostError):
        await backend.ack(a)
    with pytest.raises(LeaseLostError):
        await backend.nack(b, requeue=True)
    with pytest.raises(LeaseLostError):
        await backend.extend_lease(c, 10)
    with pytest.raises(LeaseLostError):
        await backend.nack(d, requeue=False)
    with pytest.raises(LeaseLostError):
        await backend.move(e, make_other_queue(backend))
    assert await backend.delete(a.id) is False
    stats = await backend.stats()
    assert (stats.queue_depth, stats.in_flight, stats.dead) == (0, 0, 0)
    assert await backend.dequeue() is None
    another = await make_backend()  # opens on the queue's keys as they are now
    assert await another.delete(b.id) is False
    with pytest.raises(LeaseLostError):
        await another.ack(a)

"""peek and iter: dequeue order, offsets, paging, reverse, id and time bounds, state selection."""

from __future__ import annotations

import pytest

from queuestore import IterOptions, Job, JobState, QueueBackend, UnsupportedOperationError

from .conservation import require

pytestmark = pytest.mark.anyio


async def fill(backend: QueueBackend, n: int, **fields: object) -> list[Job]:
    jobs = [Job(payload=i, created_at=1_000.0 + i, **fields) for i in range(n)]  # type: ignore[arg-type]
    for job in jobs:
        assert await backend.enqueue(job)
    return jobs


async def walk(backend: QueueBackend, **options: object) -> list[str]:
    return [j.id async for j in backend.iter(IterOptions(**options))]  # type: ignore[arg-type]


async def test_peek_zero_is_the_next_dequeued_job(backend: QueueBackend) -> None:
    require(backend, "prioritization")
    jobs = [Job(payload=i, priority=p) for i, p in enumerate([1, 7, 1, 7])]
    for job in jobs:
        await backend.enqueue(job)
    for _ in jobs:
        peeked = await backend.peek(0)
        got = await backend.dequeue()
        assert peeked is not None
        assert got is not None
        assert peeked.id == got.id
        assert peeked.state == JobState.READY
        assert peeked.lease_token is None
    assert await backend.peek(0) is None


async def test_peek_offsets_follow_dequeue_order_without_leasing(backend: QueueBackend) -> None:
    jobs = await fill(backend, 5)
    assert [(await backend.peek(i)).id for i in range(5)] == [j.id for j in jobs]  # type: ignore[union-attr]
    assert await backend.peek(5) is None
    assert await backend.peek(500) is None
    assert await backend.length() == 5
    assert (await backend.stats()).in_flight == 0


async def test_peek_reaches_every_offset_from_either_end_after_dequeues(backend: QueueBackend) -> None:
    jobs = await fill(backend, 9)
    await backend.enqueue(Job(payload="later").delayed(60))
    leased = [await backend.dequeue() for _ in range(3)]
    assert [j.id for j in leased if j is not None] == [j.id for j in jobs[:3]]
    rest = [j.id for j in jobs[3:]]
    assert [(await backend.peek(i)).id for i in range(len(rest))] == rest  # type: ignore[union-attr]
    assert await backend.peek(len(rest)) is None
    await backend.ack(leased[0])  # type: ignore[arg-type]
    assert (await backend.peek(len(rest) - 1)).id == rest[-1]  # type: ignore[union-attr]


async def test_iter_pages_through_more_than_one_page(backend: QueueBackend) -> None:
    jobs = await fill(backend, 23)
    assert await walk(backend, count=5) == [j.id for j in jobs]
    assert await walk(backend, count=5, reverse=True) == [j.id for j in reversed(jobs)]
    assert await walk(backend, count=100) == [j.id for j in jobs]
    assert await backend.length() == 23, "iter must not consume jobs"


async def test_iter_walks_ready_in_dequeue_order_then_delayed(backend: QueueBackend) -> None:
    require(backend, "prioritization")
    low, high = Job(payload="low", priority=0), Job(payload="high", priority=8)
    later = Job(payload="later").delayed(60)
    for job in (low, later, high):
        await backend.enqueue(job)
    assert await walk(backend, count=2) == [high.id, low.id, later.id]
    assert await walk(backend, count=2, reverse=True) == [later.id, low.id, high.id]
    assert await walk(backend, states=(JobState.DELAYED,)) == [later.id]


async def test_iter_id_bounds_are_inclusive_positions(backend: QueueBackend) -> None:
    ids = [j.id for j in await fill(backend, 12)]
    assert await walk(backend, count=4, start_id=ids[3], end_id=ids[8]) == ids[3:9]
    assert await walk(backend, count=4, start_id=ids[9]) == ids[9:]
    assert await walk(backend, count=4, end_id=ids[2]) == ids[:3]
    assert await walk(backend, count=4, reverse=True, start_id=ids[8], end_id=ids[3]) == ids[8:2:-1]
    assert await walk(backend, count=4, start_id="not-a-stored-id") == []


async def test_iter_time_bounds_filter_created_at(backend: QueueBackend) -> None:
    ids = [j.id for j in await fill(backend, 12)]  # created_at = 1000 + i
    assert await walk(backend, count=3, start_time=1_004.0, end_time=1_007.0) == ids[4:7]
    assert await walk(backend, count=3, start_time=1_010.0) == ids[10:]
    assert await walk(backend, count=3, end_time=1_002.0, reverse=True) == ids[1::-1]


async def test_iter_survives_dequeues_between_pages(backend: QueueBackend) -> None:
    jobs = await fill(backend, 20)
    seen: list[str] = []
    async for job in backend.iter(IterOptions(count=4)):
        seen.append(job.id)
        if len(seen) == 6:
            for _ in range(3):  # take three from the head, already walked
                got = await backend.dequeue()
                assert got is not None
                await backend.ack(got)
    assert len(seen) == len(set(seen)), "iter yielded a job twice"
    assert seen == [j.id for j in jobs], "iter lost its place after the head changed"


async def test_iter_selects_in_flight_and_dead(backend: QueueBackend) -> None:
    jobs = await fill(backend, 3, max_retries=0)
    a = await backend.dequeue()
    b = await backend.dequeue()
    assert a is not None
    assert b is not None
    await backend.nack(b, requeue=False)
    assert await walk(backend, states=(JobState.IN_FLIGHT,)) == [a.id]
    assert await walk(backend, states=(JobState.DEAD,)) == [b.id]
    assert await walk(backend) == [jobs[2].id]
    everything = await walk(backend, states=(JobState.READY, JobState.IN_FLIGHT, JobState.DEAD), count=1)
    assert everything == [jobs[2].id, a.id, b.id]


async def test_get_jobs_finds_jobs_by_id_in_every_state(backend: QueueBackend) -> None:
    jobs = await fill(backend, 4, max_retries=0)
    later = Job(payload="later").delayed(60)
    await backend.enqueue(later)
    leased, dead, acked = (await backend.dequeue(), await backend.dequeue(), await backend.dequeue())
    assert leased is not None
    assert dead is not None
    assert acked is not None
    await backend.nack(dead, requeue=False)
    await backend.ack(acked)
    ids = [jobs[0].id, jobs[1].id, jobs[2].id, jobs[3].id, later.id, "never-enqueued"]
    try:
        found = await backend.get_jobs(ids)
    except UnsupportedOperationError:
        return  # the ABC's documented refusal: lookup by id is optional
    assert [j.state if j else None for j in found] == [
        JobState.IN_FLIGHT,
        JobState.DEAD,
        None,
        JobState.READY,
        JobState.DELAYED,
        None,
    ]
    assert [j.id for j in found if j] == [jobs[0].id, jobs[1].id, jobs[3].id, later.id]
    assert found[0] is not None
    assert found[0].lease_token == leased.lease_token

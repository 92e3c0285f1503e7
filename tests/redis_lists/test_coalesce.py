"""The ``coalesce`` option: concurrent per-job calls share one script per loop tick, and each
caller still gets its own job, lease, result and error."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from queuestore import DequeueOptions, InvalidJobError, Job, JobNotFoundError, LeaseLostError

from .conftest import Maker

pytestmark = pytest.mark.anyio


async def test_concurrent_calls_share_scripts_each_with_its_own_result(lists: Maker) -> None:
    b = await lists(coalesce=True)
    before = b.script_set.calls["enqueue"]
    stored = await asyncio.gather(*(b.enqueue(Job(id=f"j{i}", payload=i)) for i in range(50)))
    assert stored == [True] * 50
    assert b.script_set.calls["enqueue"] - before < 50  # batched (one per tick)
    again = await asyncio.gather(b.enqueue(Job(id="j1")), b.enqueue(Job(id="new")))
    assert again == [False, True]  # a duplicate id is refused for that call only

    before = b.script_set.calls["dequeue"]
    jobs = await asyncio.gather(*(b.dequeue() for _ in range(60)))
    got = [j for j in jobs if j is not None]
    assert len(got) == 51
    assert jobs.count(None) == 9
    assert b.script_set.calls["dequeue"] - before < 60
    assert len({j.id for j in got}) == 51
    assert len({j.lease_token for j in got}) == 51  # a lease each

    stale = msgspec.structs.replace(got[0], lease_token="stale")
    results = await asyncio.gather(
        b.ack(stale), b.ack("nope"), *(b.ack(j) for j in got[1:]), return_exceptions=True
    )
    assert isinstance(results[0], LeaseLostError)
    assert isinstance(results[1], JobNotFoundError)
    assert results[2:] == [None] * 50  # the others are acked all the same
    await b.ack(got[0])
    stats = await b.stats()
    assert (stats.queue_depth, stats.in_flight, stats.total_acked) == (0, 0, 51)


async def test_an_invalid_job_fails_only_its_own_enqueue(lists: Maker) -> None:
    b = await lists(coalesce=True)
    results = await asyncio.gather(
        b.enqueue(Job(id="ok")), b.enqueue(Job(id="bad", priority=42)), return_exceptions=True
    )
    assert results[0] is True
    assert isinstance(results[1], InvalidJobError)
    assert await b.length() == 1


async def test_waiting_dequeues_get_jobs_enqueued_later(lists: Maker) -> None:
    b = await lists(coalesce=True)
    waiting = [asyncio.ensure_future(b.dequeue(DequeueOptions(timeout=5.0))) for _ in range(4)]
    await asyncio.sleep(0.05)
    await asyncio.gather(*(b.enqueue(Job(id=f"w{i}")) for i in range(4)))
    jobs = await asyncio.wait_for(asyncio.gather(*waiting), 5.0)
    assert sorted(j.id for j in jobs if j) == ["w0", "w1", "w2", "w3"]


async def test_lease_lengths_are_not_mixed(lists: Maker) -> None:
    b = await lists(coalesce=True)
    await b.enqueue_many([Job(id="a"), Job(id="b")])
    short, default = await asyncio.gather(b.dequeue(DequeueOptions(visibility_timeout=5.0)), b.dequeue())
    assert short is not None
    assert default is not None
    assert short.lease_deadline is not None
    assert default.lease_deadline is not None
    assert default.lease_deadline - short.lease_deadline > 20.0


async def test_coalescing_is_off_by_default(lists: Maker) -> None:
    b = await lists()
    assert b.coalescing is False
    await b.enqueue(Job(id="x"))
    job = await b.dequeue()
    assert job is not None
    await b.ack(job)

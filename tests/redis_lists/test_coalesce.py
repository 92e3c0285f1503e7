"""The ``coalesce`` option (on by default): group commit of concurrent per-job calls. A lone call
goes out at once in its own task; calls arriving while one is in flight go together as one batch
when it returns, and each caller still gets its own job, lease, result and error."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from queuestore import (
    BackendClosedError,
    DequeueOptions,
    InvalidJobError,
    Job,
    JobNotFoundError,
    LeaseLostError,
)
from queuestore.backends.redis_lists import RedisListsBackend

from .conftest import Maker

pytestmark = pytest.mark.anyio


def _stores(b: RedisListsBackend) -> int:
    """Store scripts run so far (a lone ready job's own script, ``enqueue_one``, included)."""
    return b.script_set.calls["enqueue"] + b.script_set.calls["enqueue_one"]


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


async def test_coalescing_is_on_by_default_and_a_lone_call_goes_out_at_once(lists: Maker) -> None:
    b = await lists()
    assert b.coalescing is True
    assert await b.enqueue(Job(id="one")) is True
    job = await b.dequeue()
    assert job is not None
    await b.ack(job)
    # each went out directly, as a batch of one: no flush task, no loop tick of waiting
    assert (b._coalescer.direct, b._coalescer.batches) == (3, 0)


async def test_calls_arriving_while_one_is_in_flight_go_together_when_it_returns(lists: Maker) -> None:
    b = await lists()
    await b.enqueue_many([Job(id="first")])  # a new queue's first store sweeps (enqueue.lua)
    before = _stores(b)
    stored = await asyncio.gather(*(b.enqueue(Job(id=f"g{i}")) for i in range(50)))
    assert stored == [True] * 50
    # the first call went out alone at once; the 49 that came meanwhile went as one batch
    assert _stores(b) - before == 2
    assert (b._coalescer.direct, b._coalescer.batches, b._coalescer.batched) == (1, 1, 49)
    assert await b.length() == 51


async def test_coalescing_off_sends_one_script_per_call(lists: Maker) -> None:
    b = await lists(coalesce=False)
    await b.enqueue_many([Job(id="first")])  # a new queue's first store sweeps (enqueue.lua)
    before = _stores(b)
    await asyncio.gather(*(b.enqueue(Job(id=f"o{i}")) for i in range(10)))
    assert _stores(b) - before == 10
    assert b._coalescer.direct == 0


async def test_a_waiting_call_cancelled_before_its_batch_goes_is_left_out(lists: Maker) -> None:
    b = await lists()
    first = asyncio.ensure_future(b.enqueue(Job(id="first")))
    await asyncio.sleep(0)  # in flight now
    waiting = asyncio.ensure_future(b.enqueue(Job(id="cancelled")))
    kept = asyncio.ensure_future(b.enqueue(Job(id="kept")))
    await asyncio.sleep(0)
    waiting.cancel()
    assert await first is True
    assert await kept is True
    assert waiting.cancelled()
    assert [j is None for j in await b.get_jobs(["first", "cancelled", "kept"])] == [False, True, False]
    assert b._coalescer.batched == 1


async def test_flushes_run_in_the_backends_task_group_and_finish_at_close(lists: Maker) -> None:
    b = await lists()
    async with b:
        assert b._coalescer._group is not None
        stored = await asyncio.gather(*(b.enqueue(Job(id=f"t{i}")) for i in range(20)))
        assert stored == [True] * 20
        assert b._coalescer.batches >= 1
        assert not b._coalescer._tasks  # none unowned: the task group ran them
        # calls in flight when the backend closes: each finishes, or fails as closed
        calls = [asyncio.ensure_future(b.enqueue(Job(id=f"c{i}"))) for i in range(20)]
        await asyncio.sleep(0)
    assert b._coalescer._group is None
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(r is True or isinstance(r, BackendClosedError) for r in results), results
    check = await lists()
    landed = await check.get_jobs([f"c{i}" for i in range(20)])
    assert [j is not None for j in landed] == [r is True for r in results]  # each call told the truth


async def test_thirty_two_consumers_with_default_options_never_wait_for_a_connection(lists: Maker) -> None:
    b = await lists()
    await b.enqueue_many([Job(id=f"p{i}") for i in range(640)])
    pool = b.conn.client.connection_pool
    waits = pool.waits

    async def consumer() -> int:
        n = 0
        while (job := await b.dequeue(DequeueOptions(timeout=0.0))) is not None:
            await b.ack(job)
            n += 1
        return n

    assert sum(await asyncio.gather(*(consumer() for _ in range(32)))) == 640
    assert pool.waits == waits
    await b.enqueue(Job(id="x"))
    job = await b.dequeue()
    assert job is not None
    await b.ack(job)

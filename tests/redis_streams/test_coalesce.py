"""The ``coalesce`` option on redis-streams (on by default): a lone call goes out at once,
calls arriving while one is in flight share one script when it returns; each caller gets its
own job, lease, result and error."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from queuestore import InvalidJobError, Job, JobNotFoundError, LeaseLostError
from queuestore.backends.redis_streams import RedisStreamsBackend

from .conftest import Maker

pytestmark = pytest.mark.anyio


def takes(b: RedisStreamsBackend) -> int:
    """Takes run so far: by the take script, or as one transaction (two jobs or more)."""
    return b.script_set.calls["take"] + b.script_set.calls["lease"]


async def test_concurrent_calls_share_scripts_each_with_its_own_result(make: Maker) -> None:
    b = await make(coalesce=True)
    before = b.script_set.calls["enqueue"]
    stored = await asyncio.gather(*(b.enqueue(Job(id=f"j{i}", payload=i)) for i in range(40)))
    assert stored == [True] * 40
    assert b.script_set.calls["enqueue"] - before < 40
    results = await asyncio.gather(
        b.enqueue(Job(id="j1")), b.enqueue(Job(id="bad", priority=42)), return_exceptions=True
    )
    assert results[0] is False
    assert isinstance(results[1], InvalidJobError)

    before = takes(b)
    jobs = await asyncio.gather(*(b.dequeue() for _ in range(45)))
    got = [j for j in jobs if j is not None]
    assert len(got) == 40
    assert jobs.count(None) == 5
    assert takes(b) - before < 45
    assert len({j.id for j in got}) == 40
    assert len({j.lease_token for j in got}) == 40

    token = got[0].lease_token
    assert token is not None
    stale = msgspec.structs.replace(got[0], lease_token=token[:-1] + "9")
    results = await asyncio.gather(
        b.ack(stale), b.ack("nope"), *(b.ack(j) for j in got[1:]), return_exceptions=True
    )
    assert isinstance(results[0], LeaseLostError)
    assert isinstance(results[1], JobNotFoundError)
    assert results[2:] == [None] * 39
    await b.ack(got[0])
    stats = await b.stats()
    assert (stats.queue_depth, stats.in_flight, stats.total_acked) == (0, 0, 40)


async def test_on_by_default_a_lone_call_at_once_the_rest_grouped(make: Maker) -> None:
    b = await make()
    assert b.coalescing is True
    assert await b.enqueue(Job(id="one")) is True
    job = await b.dequeue()
    assert job is not None
    await b.ack(job)
    assert (b._coalescer.direct, b._coalescer.batches) == (3, 0)
    before = takes(b)
    await b.enqueue_many([Job(id=f"g{i}") for i in range(30)])
    jobs = await asyncio.gather(*(b.dequeue() for _ in range(30)))
    assert len({j.id for j in jobs if j is not None}) == 30
    assert takes(b) - before == 2  # one alone at once, 29 together after it
    assert (b._coalescer.batches, b._coalescer.batched) == (1, 29)

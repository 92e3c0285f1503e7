"""A batch of leases goes into a skiplist (each insert and delete O(log N)), not a listpack
walked for every member, and the member that makes it one is gone when the script returns."""

from __future__ import annotations

import pytest

from queuestore import DequeueOptions, Job
from tests.servers import RedisServer

from .conftest import Maker

pytestmark = pytest.mark.anyio


async def test_a_batch_of_leases_is_a_skiplist_of_only_the_leases(
    lists: Maker, redis_server: RedisServer
) -> None:
    b = await lists()
    assert await b.enqueue_many([Job(id=f"j{i:03}") for i in range(120)]) == [True] * 120
    r = redis_server.sync_client()
    leases = b.keys.key("inflight")
    one = await b.dequeue(DequeueOptions(timeout=0))  # a lone lease: a small set stays a listpack
    assert one is not None
    assert r.object("encoding", leases) == b"listpack"
    got = await b.dequeue_many(DequeueOptions(count=100))
    assert len(got) == 100
    assert r.object("encoding", leases) == b"skiplist"
    assert sorted(m.decode() for m in r.zrange(leases, 0, -1)) == sorted([one.id] + [j.id for j in got])
    assert await b.ack_many(got) == [True] * 100
    await b.ack(one)
    assert r.exists(leases) == 0
    assert [j.id for j in await b.dequeue_many(DequeueOptions(count=100))] == [
        f"j{i:03}" for i in range(101, 120)
    ]

"""A take by the take script (a lease longer than ``claim_min_idle``) puts a batch of leases into a
skiplist, and the member that makes it one is gone when the take returns."""

from __future__ import annotations

import pytest

from queuestore import DequeueOptions, Job
from tests.servers import RedisServer

from .conftest import Maker

pytestmark = pytest.mark.anyio


async def test_a_batch_of_leases_is_a_skiplist_of_only_the_leases(
    make: Maker, redis_server: RedisServer
) -> None:
    b = await make()
    assert await b.enqueue_many([Job(id=f"j{i:03}") for i in range(120)]) == [True] * 120
    r = redis_server.sync_client()
    leases = b.store.keys.leases
    longer = b.store.claim_min_idle + 10  # a lease record per entry, by the take script
    got = await b.dequeue_many(DequeueOptions(count=100, visibility_timeout=longer))
    assert len(got) == 100
    assert r.object("encoding", leases) == b"skiplist"
    assert r.zcard(leases) == 100
    assert all(b"~" not in m for m in r.zrange(leases, 0, -1))
    assert await b.ack_many(got) == [True] * 100
    rest = await b.dequeue_many(DequeueOptions(count=100))
    assert [j.id for j in rest] == [f"j{i:03}" for i in range(100, 120)]

"""A batch take sent as one transaction: its entries are pending under a consumer of its own with
one lease record for all of them; acks, extensions, reclaims, lookups, retries, hand-backs and a
flushed script cache all see that lease as they see one per entry."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from queuestore import DequeueOptions, Job, JobState, LeaseLostError
from queuestore.backends.redis_streams import RedisStreamsBackend
from queuestore.backends.redis_streams.layout import SEP, call_id
from queuestore.backends.redis_streams.settle import give_back
from queuestore.backends.redis_streams.take import take
from tests.servers import RedisServer

from .conftest import Maker

pytestmark = pytest.mark.anyio


def takers(b: RedisStreamsBackend, r: Any) -> dict[str, int]:
    """The group's consumers that are takes ("@..."), with what each holds."""
    rows = r.xinfo_consumers(b.store.keys.stream, b.store.group)
    return {row["name"].decode(): int(row["pending"]) for row in rows if row["name"].startswith(b"@")}


def lease_members(b: RedisStreamsBackend, r: Any) -> list[str]:
    return [m.decode() for m in r.zrange(b.store.keys.leases, 0, -1)]


async def test_one_lease_record_and_one_consumer_per_take_both_gone_after_the_acks(
    make: Maker, redis_server: RedisServer
) -> None:
    b = await make()
    r = redis_server.sync_client()
    assert await b.enqueue_many([Job(id=f"j{i:02}", payload=i) for i in range(30)]) == [True] * 30
    jobs = await b.dequeue_many(DequeueOptions(count=20))
    assert [j.id for j in jobs] == [f"j{i:02}" for i in range(20)]
    held = takers(b, r)
    assert list(held.values()) == [20]
    (consumer,) = held
    assert consumer.endswith(":" + b.store.consumer)  # the caller's name stays visible
    assert lease_members(b, r) == [b.store.group + SEP + consumer]
    assert {j.lease_token.split(SEP)[1] for j in jobs if j.lease_token} == {consumer}
    deadline = jobs[0].lease_deadline
    assert deadline is not None
    assert all(j.lease_deadline == deadline for j in jobs)
    # a lookup and an iteration read the take's lease
    found = await b.get_jobs(["j03"])
    assert found[0] is not None
    assert found[0].state is JobState.IN_FLIGHT
    assert found[0].lease_deadline == pytest.approx(deadline, abs=0.002)
    assert found[0].lease_token == jobs[3].lease_token

    assert await b.ack_many(jobs[:10]) == [True] * 10
    assert takers(b, r) == {consumer: 10}
    assert await b.ack_many(jobs[10:]) == [True] * 10
    assert takers(b, r) == {}
    assert lease_members(b, r) == []
    assert await b.length() == 10
    assert (await b.stats()).in_flight == 0


async def test_an_expired_take_is_reclaimed_but_for_the_job_extended_since(
    make: Maker, redis_server: RedisServer
) -> None:
    b = await make(claim_min_idle=0.3, reclaim_interval=3600)
    r = redis_server.sync_client()
    assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(4)]) == [True] * 4
    first = await b.dequeue_many(DequeueOptions(count=4))
    assert len(first) == 4
    kept = first[1]
    await b.extend_lease(kept, 10)
    await anyio.sleep(0.45)
    again = await b.dequeue_many(DequeueOptions(count=10))
    assert sorted(j.id for j in again) == ["j0", "j2", "j3"]
    assert all(j.retry_count == 1 for j in again)
    # the old holders' tokens no longer hold those; the extended one still holds its job
    assert await b.ack_many([first[0], first[2]]) == [False, False]
    with pytest.raises(LeaseLostError):
        await b.ack(first[3])
    assert await b.ack_many([kept]) == [True]
    assert await b.ack_many(again) == [True] * 3
    assert await b.length() == 0
    assert takers(b, r) == {}
    assert lease_members(b, r) == []


async def test_a_retried_take_returns_what_the_first_run_leased_and_nothing_more(make: Maker) -> None:
    b = await make()
    store = b.store
    assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(10)]) == [True] * 10
    cid = call_id()
    lease = store.claim_min_idle
    first = await take(store, store.group, store.consumer, 4, lease, cid)
    # the same call again (its reply lost, say): the take script replays the first run
    again = await take(store, store.group, store.consumer, 4, lease, cid, retry=True)
    assert [j.id for j in again.jobs] == [j.id for j in first.jobs] == ["j0", "j1", "j2", "j3"]
    assert [j.lease_token for j in again.jobs] == [j.lease_token for j in first.jobs]
    assert (await b.stats()).in_flight == 4
    rest = await b.dequeue_many(DequeueOptions(count=10))
    assert sorted(j.id for j in rest) == [f"j{i}" for i in range(4, 10)]
    assert all(j.attempt == 1 for j in rest)  # handed back: no attempt counted
    assert await b.ack_many([*first.jobs, *rest]) == [True] * 10


async def test_a_take_that_runs_after_its_hand_back_leases_nothing(
    make: Maker, redis_server: RedisServer
) -> None:
    b = await make()
    r = redis_server.sync_client()
    store = b.store
    assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(6)]) == [True] * 6
    cid = call_id()
    # the dequeue was cancelled and handed its take back before the take reached the server
    assert await give_back(store, cid, store.group) == 0
    got = await take(store, store.group, store.consumer, 4, store.claim_min_idle, cid)
    assert got.jobs == []
    assert (await b.stats()).in_flight == 0
    assert takers(b, r) == {}
    rest = await b.dequeue_many(DequeueOptions(count=10))
    assert sorted(j.id for j in rest) == [f"j{i}" for i in range(6)]
    assert all(j.attempt == 1 for j in rest)


async def test_a_cancelled_take_hands_back_what_it_read(make: Maker, redis_server: RedisServer) -> None:
    b = await make()
    r = redis_server.sync_client()
    store = b.store
    assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(5)]) == [True] * 5
    cid = call_id()
    got = await take(store, store.group, store.consumer, 5, store.claim_min_idle, cid)
    assert len(got.jobs) == 5
    assert await give_back(store, cid, store.group) == 5
    assert takers(b, r) == {}
    assert lease_members(b, r) == []
    again = await b.dequeue_many(DequeueOptions(count=10))
    assert [j.id for j in again] == [f"j{i}" for i in range(5)]
    assert all(j.attempt == 1 for j in again)


async def test_a_flushed_script_cache_still_records_the_take(make: Maker, redis_server: RedisServer) -> None:
    b = await make()
    r = redis_server.sync_client()
    assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(6)]) == [True] * 6
    r.script_flush()
    jobs = await b.dequeue_many(DequeueOptions(count=3))
    assert [j.id for j in jobs] == ["j0", "j1", "j2"]
    assert len(lease_members(b, r)) == 1
    found = await b.get_jobs(["j1"])
    assert found[0] is not None
    assert found[0].lease_deadline is not None
    assert await b.ack_many(jobs) == [True] * 3
    more = await b.dequeue_many(DequeueOptions(count=3))
    assert [j.id for j in more] == ["j3", "j4", "j5"]
    assert await b.ack_many(more) == [True] * 3
    assert takers(b, r) == {}


async def test_a_failing_sweep_before_a_batch_take_is_logged_and_the_take_goes_on(
    make: Maker, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The sweep that runs first in a batch take's transaction fails (something else made the
    delayed set a string): the read and its lease stand, and the failure is logged, not dropped."""
    b = await make()
    r = redis_server.sync_client()
    assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(3)]) == [True] * 3
    r.set(b.store.keys.delayed, "not a zset")
    with caplog.at_level(logging.WARNING, logger="queuestore.backends.redis_streams"):
        jobs = await b.dequeue_many(DequeueOptions(count=3))
    assert [j.id for j in jobs] == ["j0", "j1", "j2"]
    assert "the sweep before a batch take failed, the take went on" in caplog.text
    assert "WRONGTYPE" in caplog.text
    r.delete(b.store.keys.delayed)
    assert await b.ack_many(jobs) == [True] * 3
    assert takers(b, r) == {}


async def test_a_lease_longer_than_claim_min_idle_is_leased_per_entry(
    make: Maker, redis_server: RedisServer
) -> None:
    b = await make()
    r = redis_server.sync_client()
    assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(3)]) == [True] * 3
    jobs = await b.dequeue_many(DequeueOptions(count=3, visibility_timeout=b.store.claim_min_idle + 5))
    assert len(jobs) == 3
    assert takers(b, r) == {}
    assert len(lease_members(b, r)) == 3
    assert await b.ack_many(jobs) == [True] * 3

"""Ready jobs in Redis lists: a job that leaves the middle of a list by id leaves a stale
entry that every reader skips and dequeue drops; the sweep runs when something is due, not
on every dequeue; acked jobs leave nothing behind."""

from __future__ import annotations

import anyio
import pytest

from queuestore import ALL, DequeueOptions, IterOptions, Job, JobState, QueueStoreError
from queuestore.testing import ServerFactory
from tests.servers import RedisServer

from .conftest import Maker

pytestmark = pytest.mark.anyio


async def test_a_job_leaving_the_middle_leaves_a_stale_entry_that_is_skipped(
    lists: Maker, redis_server: RedisServer
) -> None:
    b = await lists()
    target = await lists("target-" + b.queue)
    a, moved, expiring, c = Job(id="a"), Job(id="moved"), Job(id="expiring").with_ttl(0.3), Job(id="c")
    assert await b.enqueue_many([a, moved, expiring, c]) == [True] * 4
    await b.move(moved.id, target.queue)  # out of the middle of ready:0, by id
    await anyio.sleep(0.4)  # `expiring` is past its TTL
    r = redis_server.sync_client()
    ready0, info = b.keys.key("ready:0"), b.keys.key("info")
    assert (await b.peek(0), await b.peek(1), await b.peek(2)) == (
        (await b.get_jobs(["a"]))[0],
        (await b.get_jobs(["c"]))[0],
        None,
    )
    assert r.llen(ready0) == 4  # the two stale entries are still in the list ...
    assert int(r.hget(info, "stale") or 0) == 2
    assert await b.length() == 2  # ... and counted nowhere
    assert [j.id async for j in b.iter()] == ["a", "c"]
    assert [j.id async for j in b.iter(IterOptions(reverse=True, count=1))] == ["c", "a"]
    assert [j.id async for j in b.iter(IterOptions(start_id="c"))] == ["c"]
    assert [j.id async for j in b.iter(IterOptions(start_id="moved"))] == []
    got = await b.dequeue_many(DequeueOptions(count=10))
    assert [j.id for j in got] == ["a", "c"]
    assert r.llen(ready0) == 0  # dropped when popped
    assert int(r.hget(info, "stale") or 0) == 0
    assert [j.id for j in await target.dequeue_many(DequeueOptions(count=10))] == ["moved"]
    assert (await b.stats()).total_expired == 1


async def test_an_iterator_cursor_survives_pops_and_pushes(lists: Maker) -> None:
    b = await lists()
    assert await b.enqueue_many([Job(id=f"j{i}") for i in range(10)]) == [True] * 10
    walk = b.iter(IterOptions(count=3))
    seen = [(await anext(walk)).id for _ in range(3)]
    assert [j.id for j in await b.dequeue_many(DequeueOptions(count=2))] == ["j0", "j1"]
    await b.enqueue(Job(id="late"))
    seen += [j.id async for j in walk]
    assert seen == ["j0", "j1", "j2", "j3", "j4", "j5", "j6", "j7", "j8", "j9", "late"]


async def test_the_sweep_runs_only_when_something_is_due(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory()
    maker = Maker(server.url)
    try:
        b = await maker(visibility_timeout=60)
        r = server.sync_client()
        assert await b.enqueue_many([Job(payload=i) for i in range(200)]) == [True] * 200
        r.config_resetstat()
        for _ in range(20):
            jobs = await b.dequeue_many(DequeueOptions(count=10))
            assert len(jobs) == 10
            assert await b.ack_many(jobs) == [True] * 10
        stats = r.info("commandstats")
        # one read of the plain list's head and one of ready:0's per call: the empty priorities
        # (not marked in the info hash) are skipped
        assert 40 <= stats["cmdstat_lrange"]["calls"] <= 41
        assert "cmdstat_rpop" not in stats
        # the first dequeue sweeps (nothing was due yet: it learns the next due time), no other
        assert stats.get("cmdstat_zrangebyscore", {"calls": 0})["calls"] <= 4
        # and a lease that expires is still reclaimed by a dequeue, with no maintenance loop
        short = await maker(visibility_timeout=0.2)
        await short.enqueue(Job(id="lost"))
        first = await short.dequeue()
        assert first is not None
        await anyio.sleep(0.3)
        again = await short.dequeue()
        assert again is not None
        assert (again.id, again.attempt, again.retry_count) == ("lost", 2, 1)
        await short.ack(again)
        # a delayed job enqueued after a sweep found nothing due is promoted on time
        assert await short.dequeue() is None
        await short.enqueue(Job(id="later").delayed(0.2))
        await anyio.sleep(0.3)
        later = await short.dequeue()
        assert later is not None
        assert later.id == "later"
    finally:
        await maker.aclose()


async def test_acked_jobs_leave_nothing_behind(lists: Maker, redis_server: RedisServer) -> None:
    b = await lists()
    r = redis_server.sync_client()
    jobs = [Job(payload="x" * 50, priority=i % 10) for i in range(1000)]
    assert await b.enqueue_many(jobs) == [True] * 1000
    while got := await b.dequeue_many(DequeueOptions(count=100)):
        assert await b.ack_many(got) == [True] * len(got)
    await b.reclaim()
    left = {k.decode().rsplit(":", 1)[-1]: r.type(k).decode() for k in r.keys(f"{lists.base(b.queue)}:*")}
    # no call records either: calls list the calls whose replies came back, a batch at a time,
    # the maintenance sweep lists the rest, and their records are deleted
    assert left == {"info": "hash", "wake": "list"}
    info = r.hgetall(b.keys.key("info"))
    assert len(info) <= 16  # counters and the layout marker, nothing per job
    assert int(info.get(b"stale", 0)) == 0
    assert r.llen(b.keys.key("wake")) <= 64


async def test_priorities_and_fifo_across_requeues(lists: Maker) -> None:
    b = await lists()
    jobs = [Job(id=f"p{i % 3}-{i}", priority=i % 3) for i in range(9)]
    assert await b.enqueue_many(jobs) == [True] * 9
    first = await b.dequeue()
    assert first is not None
    assert first.id == "p2-2"
    await b.nack(first, requeue=True)  # to the tail of its priority
    order = [j.id for j in await b.dequeue_many(DequeueOptions(count=20))]
    assert order == ["p2-5", "p2-8", "p2-2", "p1-1", "p1-4", "p1-7", "p0-0", "p0-3", "p0-6"]
    assert (await b.get_jobs(["p2-2"]))[0] is not None
    assert (await b.get_jobs(["p2-2"]))[0].state is JobState.IN_FLIGHT  # type: ignore[union-attr]


async def test_garbage_in_the_info_hash_and_the_lists_is_survived(
    lists: Maker, redis_server: RedisServer
) -> None:
    b = await lists()
    r = redis_server.sync_client()
    jobs = [Job(id=f"g{i}", priority=i % 2) for i in range(6)]
    assert await b.enqueue_many(jobs) == [True] * 6
    info = b.keys.key("info")
    r.hset(info, "due", "not a number")
    r.hdel(info, "ne:0", "ne:1")  # the marks of the non-empty lists are lost
    r.rpush(b.keys.key("ready:1"), "never-stored")  # an id with no record, at the head
    r.hset(info, "pop:0", "garbage")
    got = await b.dequeue_many(DequeueOptions(count=10))  # the sweep runs (due unreadable) and repairs
    assert [j.id for j in got] == ["g1", "g3", "g5", "g0", "g2", "g4"]
    assert float(r.hget(info, "due") or 0) > 0
    assert r.llen(b.keys.key("ready:1")) == 0
    assert await b.ack_many(got) == [True] * 6
    r.delete(info)  # the whole hash lost: the next call sweeps, marks and serves
    await b.enqueue(Job(id="after"))
    r.delete(info)
    again = await b.dequeue()
    assert again is not None
    assert again.id == "after"


async def test_a_script_error_after_reading_the_head_loses_nothing(
    lists: Maker, redis_server: RedisServer
) -> None:
    b = await lists()
    r = redis_server.sync_client()
    jobs = [Job(id=f"e{i}") for i in range(5)]
    assert await b.enqueue_many(jobs) == [True] * 5
    inflight = b.keys.key("inflight")
    r.set(inflight, "not a sorted set")  # the lease write fails (WRONGTYPE) inside the script
    with pytest.raises(QueueStoreError):
        await b.dequeue_many(DequeueOptions(count=3))
    r.delete(inflight)
    got = await b.dequeue_many(DequeueOptions(count=10))
    assert [j.id for j in got] == [j.id for j in jobs]  # all still there, in order, once
    assert all(j.attempt == 1 for j in got)
    assert await b.ack_many(got) == [True] * 5
    assert await b.length() == 0


async def test_call_records_past_their_window_are_pruned_as_calls_go_on(
    lists: Maker, redis_server: RedisServer
) -> None:
    b = await lists()
    r = redis_server.sync_client()
    calls, times = f"{lists.base(b.queue)}:calls", f"{lists.base(b.queue)}:calltimes"
    old = float(r.time()[0]) - 120.0  # records of calls two minutes ago
    for i in range(100):
        r.hset(calls, f"old{i}", "[1]")
        r.zadd(times, {f"old{i}": old})
    for i in range(100):  # pruning runs on some of the calls, up to 64 records at a time
        await b.enqueue(Job(id=f"j{i}"))
    for _ in range(10):
        got = await b.dequeue_many(DequeueOptions(count=10))
        await b.ack_many(got)
    assert r.zcount(times, "-inf", old) == 0
    assert not any(r.hexists(calls, f"old{i}") for i in range(100))
    assert r.hlen(calls) == r.zcard(times) > 0


async def test_an_id_that_is_not_utf8_in_our_keys_is_buried_and_named(
    lists: Maker, redis_server: RedisServer
) -> None:
    b = await lists()
    r = redis_server.sync_client()
    assert await b.enqueue_many([Job(id="model", payload="x"), Job(id="after")]) == [True, True]
    bad = b"\xffbad"  # a stored job under an id no consumer can decode, at the head
    r.hset(b.keys.key("jobs"), bad, r.hget(b.keys.key("jobs"), "model") or b"")
    r.hset(b.keys.key("meta"), bad, r.hget(b.keys.key("meta"), "model") or b"")
    r.rpush(b.keys.key("ready:0"), bad)
    head = await b.peek(0)  # shown marked, with the bytes escaped; never raised
    assert head is not None
    assert (head.id, head.payload, head.last_error) == ("\\xffbad", "x", "corrupt: job id is not UTF-8")
    got = await b.dequeue_many(DequeueOptions(count=3))  # dead-lettered, never handed out
    assert [j.id for j in got] == ["model", "after"]
    assert await b.ack_many(got) == [True, True]
    assert r.zrange(b.keys.key("dead"), 0, -1) == [bad]
    assert (await b.stats()).dead == 1
    assert await b.enqueue(Job(id="later", max_retries=0))
    later = await b.dequeue()
    assert later is not None
    await b.nack(later, requeue=False)
    # a listing of the dead shows it marked, and pages on past it, a job a page
    dead = [j async for j in b.iter(IterOptions(states=(JobState.DEAD,), count=1))]
    assert [(j.id, j.state, j.last_error) for j in dead] == [
        ("\\xffbad", JobState.DEAD, "corrupt: job id is not UTF-8"),
        ("later", JobState.DEAD, None),
    ]
    assert await b.redrive(ALL, to_queue="elsewhere") == 1  # "later" moves; the bad id stays dead
    assert r.zrange(b.keys.key("dead"), 0, -1) == [bad]
    assert await b.purge(JobState.DEAD, ALL) == 1
    assert await b.dequeue() is None

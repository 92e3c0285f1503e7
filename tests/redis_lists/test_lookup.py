"""``get_jobs`` of redis-lists (every state, held and moving jobs, garbage, one script per
batch; strict keys on, standalone and cluster) and how held garbage reads for a migration."""

from __future__ import annotations

import anyio
import pytest

from queuestore import InvalidJobError, Job, JobState, SerializationError
from queuestore.backends.redis_lists import RedisListsBackend
from queuestore.backends.redis_lists.layout import CORRUPT_PREFIX
from tests.servers import RedisCluster

from .conftest import Maker, queues_on_distinct_nodes

pytestmark = pytest.mark.anyio


async def lookup(b: RedisListsBackend, ids: list[str]) -> list[Job | None]:
    """get_jobs, checking that it ran one lookup script per batch and nothing else."""
    before = b.script_set.calls.copy()
    got = await b.get_jobs(ids)
    ran = b.script_set.calls - before
    size = b.lists_options.batch_size
    assert dict(ran) == ({"lookup": -(-len(ids) // size)} if ids else {})
    return got


async def every_state(b: RedisListsBackend, target_queue: str) -> None:
    inflight, dead, acked = Job(payload="i"), Job(payload="x"), Job(payload="gone")
    held_ready, held_delayed = Job(payload="hr", priority=2), Job(payload="hd").delayed(60)
    delayed, ready, moving = (
        Job(payload="d").delayed(120),
        Job(payload={"r": 1}, priority=7),
        Job(payload="m"),
    )
    expiring = Job(payload="ttl").with_ttl(0.2)
    assert await b.enqueue(inflight)
    leased = await b.dequeue()
    assert leased is not None
    assert leased.id == inflight.id
    assert await b.enqueue(dead)
    await b.nack((await b.dequeue()) or "", requeue=False, error="boom")
    assert await b.enqueue(acked)
    await b.ack((await b.dequeue()) or "")
    assert await b.enqueue_many([held_ready, held_delayed, delayed]) == [True] * 3
    assert [j.id for j in await b.migration_hold("m1", JobState.READY, 1)] == [held_ready.id]
    assert [j.id for j in await b.migration_hold("m1", JobState.DELAYED, 1)] == [held_delayed.id]
    assert await b.enqueue_many([ready, moving, expiring]) == [True] * 3
    # a cross-slot move stopped after its first step (on a standalone server too: one queue's keys)
    out = await b._script("t", "move_out", [*b.block, b.keys.key("moving")], [moving.id, "", target_queue])
    assert int(out[0]) == 1
    await anyio.sleep(0.3)  # `expiring` is past its TTL (no sweep has run: it is still in the sets)

    ids = [ready.id, delayed.id, inflight.id, dead.id, held_ready.id, held_delayed.id, moving.id]
    ids += [acked.id, expiring.id, "never-enqueued", ready.id]
    got = await lookup(b, ids)
    states = [None if j is None else j.state for j in got]
    assert states == [
        JobState.READY,
        JobState.DELAYED,
        JobState.IN_FLIGHT,
        JobState.DEAD,
        JobState.READY,  # held: the state it was held from
        JobState.DELAYED,
        JobState.READY,  # moving: the state it left
        None,
        None,
        None,
        JobState.READY,
    ]
    r, d, i, x, hr, hd = got[:6]
    assert r is not None
    assert (r.payload, r.priority, r.queue, r.lease_token) == ({"r": 1}, 7, b.queue, None)
    assert d is not None
    assert d.available_at == pytest.approx(delayed.available_at, abs=1e-3)
    assert i is not None
    assert (i.lease_token, i.attempt) == (leased.lease_token, 1)
    assert i.lease_deadline == pytest.approx(leased.lease_deadline)
    assert x is not None
    assert (x.dead_reason, x.last_error, x.origin_queue) == ("boom", "boom", b.queue)
    assert hr is not None
    assert (hr.payload, hr.priority, hr.last_error) == ("hr", 2, None)
    assert hd is not None
    assert hd.available_at == pytest.approx(held_delayed.available_at, abs=1e-3)

    # the held jobs come back where they were; the move finishes: gone here, ready there
    assert await b.migration_restore("m1") == 2
    await b.recover_moves(older_than=0)
    got = await lookup(b, [held_ready.id, held_delayed.id, moving.id])
    assert [None if j is None else j.state for j in got] == [JobState.READY, JobState.DELAYED, None]
    assert await lookup(b, []) == []


async def test_every_state_standalone(lists: Maker) -> None:
    b = await lists()
    target = await lists("target-" + b.queue)
    await every_state(b, target.queue)
    assert [j and j.state for j in await target.get_jobs([j.id async for j in target.iter()])] == [
        JobState.READY
    ]


async def test_every_state_cluster(cluster_lists: Maker, redis_cluster: RedisCluster) -> None:
    src, dst = queues_on_distinct_nodes(redis_cluster, cluster_lists)
    b, target = await cluster_lists(src), await cluster_lists(dst)
    assert b.conn.cluster
    assert b.script_set.strict_keys
    await every_state(b, target.queue)
    moved = [j.id async for j in target.iter()]
    assert len(moved) == 1
    got = await target.get_jobs(moved)
    assert got[0] is not None
    assert (got[0].state, got[0].origin_queue) == (JobState.READY, b.queue)


@pytest.mark.parametrize("where", ["standalone", "cluster"])
async def test_many_ids_in_batches_keep_their_order(
    where: str, lists: Maker, cluster_lists: Maker, request: pytest.FixtureRequest
) -> None:
    if where == "cluster":
        request.getfixturevalue("redis_cluster")
    maker = lists if where == "standalone" else cluster_lists
    b = await maker(batch_size=7)
    jobs = [Job(payload=n, priority=n % 10) for n in range(40)]
    assert await b.enqueue_many(jobs) == [True] * 40
    ids = [j.id for j in reversed(jobs)]
    ids[::5] = [f"missing-{n}" for n in range(len(ids[::5]))]
    got = await lookup(b, ids)
    for job_id, job in zip(ids, got, strict=True):
        if job_id.startswith("missing-"):
            assert job is None
        else:
            assert job is not None
            assert job.id == job_id
            assert job.state is JobState.READY


async def test_garbage_is_named_not_hidden(lists: Maker) -> None:
    b = await lists()
    bad_body, no_body, bad_meta, unlisted, good = (Job(payload=n) for n in range(5))
    assert await b.enqueue_many([bad_body, no_body, bad_meta, unlisted, good]) == [True] * 5
    jobs, meta = b.block[0], b.block[1]
    await b._call("t", "HSET", jobs, bad_body.id, b"\xc1 not msgpack")
    await b._call("t", "HDEL", jobs, no_body.id)
    await b._call("t", "HSET", meta, bad_meta.id, b"garbage")
    await b._call("t", "HDEL", meta, unlisted.id)  # body and list entry without a record: a failed write
    for job_id, why in ((bad_body.id, "undecodable"), (no_body.id, "missing"), (bad_meta.id, "metadata")):
        with pytest.raises(SerializationError) as err:
            await b.get_jobs([good.id, job_id])
        assert job_id in str(err.value)
        assert why in str(err.value)
    with pytest.raises(SerializationError) as err:
        await b.get_jobs([bad_body.id, no_body.id, bad_meta.id])
    assert all(j in str(err.value) for j in (bad_body.id, no_body.id, bad_meta.id))
    got = await b.get_jobs([unlisted.id, good.id])
    assert got[0] is None  # not stored: enqueueing it again stores it
    assert got[1] is not None
    assert got[1].payload == 4
    assert await b.enqueue(unlisted)
    with pytest.raises(InvalidJobError):
        await b.get_jobs(good.id)
    with pytest.raises(InvalidJobError):
        await b.get_jobs([good.id, 3])  # type: ignore[list-item]


async def test_held_garbage_is_marked(lists: Maker) -> None:
    b = await lists()
    first, bad, gone, last = (Job(payload=n) for n in range(4))
    assert await b.enqueue_many([first, bad, gone, last]) == [True] * 4
    await b._call("t", "HSET", b.block[0], bad.id, b"\xc1 not msgpack")
    await b._call("t", "HDEL", b.block[0], gone.id)

    for read in (
        lambda: b.migration_hold("mig", JobState.READY, 10),
        lambda: b.migration_held("mig"),
    ):
        held = {j.id: j for j in await read()}
        assert list(held) == [first.id, bad.id, gone.id, last.id]
        assert all(j.state is JobState.READY for j in held.values())
        assert held[first.id].last_error is None
        assert held[last.id].payload == 3
        assert (held[bad.id].last_error or "").startswith(CORRUPT_PREFIX + "undecodable job body")
        assert held[bad.id].payload == b"\xc1 not msgpack"
        assert held[gone.id].last_error == CORRUPT_PREFIX + "job body is missing"
    with pytest.raises(SerializationError, match=bad.id):
        await b.get_jobs([bad.id])  # held, and still garbage
    # a rollback puts them all back, in order
    assert await b.migration_restore("mig") == 4
    assert [j.id for j in await b.migration_hold("again", JobState.READY, 10)] == [
        first.id,
        bad.id,
        gone.id,
        last.id,
    ]

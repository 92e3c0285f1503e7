"""redis-lists on a real 3-primary cluster: queues on different nodes, and the cross-slot move
recovered after a crash at every step without loss or duplicate."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from redis.crc import key_slot

from queuestore import DequeueOptions, DuplicateJobError, IterOptions, Job, JobNotFoundError, JobState
from queuestore.backends.redis_lists import RedisListsBackend
from queuestore.backends.redis_lists.layout import key_block
from tests.servers import RedisCluster

from .conftest import Maker, queues_on_distinct_nodes

pytestmark = pytest.mark.anyio


async def everything(b: RedisListsBackend) -> dict[str, JobState]:
    states = (JobState.READY, JobState.DELAYED, JobState.IN_FLIGHT, JobState.DEAD)
    return {j.id: j.state async for j in b.iter(IterOptions(states=states))}


async def pair(cluster: RedisCluster, maker: Maker) -> tuple[RedisListsBackend, RedisListsBackend]:
    a, b = queues_on_distinct_nodes(cluster, maker)
    ports = {cluster.node_for_slot(key_slot(maker.base(q).encode())).port for q in (a, b)}
    assert len(ports) == 2, "the two queues must live on different nodes"
    return await maker(a), await maker(b)


async def test_move_across_nodes(cluster_lists: Maker, redis_cluster: RedisCluster) -> None:
    src, dst = await pair(redis_cluster, cluster_lists)
    assert src.capabilities().clustering
    job = Job(payload="x", priority=4)
    await src.enqueue(job)
    leased = await src.dequeue()
    assert leased is not None
    await src.move(leased, dst.queue)
    await src.move(leased.id, dst.queue)  # retry after an unknown outcome: a no-op
    assert await everything(src) == {}
    assert await everything(dst) == {job.id: JobState.READY}
    got = await dst.dequeue()
    assert got is not None
    assert got.origin_queue == src.queue
    assert got.priority == 4


async def moved_out(src: RedisListsBackend, dst: RedisListsBackend, job: Job) -> Any:
    """``job`` stored in ``src`` and taken out of it towards ``dst`` by ``move_out`` alone: a
    cross-slot move cut short after its first step. Returns ``move_out``'s reply."""
    await src.enqueue(job)
    keys = [*src.block, src.keys.key("moving")]
    out = await src._script("t", "move_out", keys, [job.id, "", dst.queue, "mv-token"])
    assert int(out[0]) == 1
    return out


@pytest.mark.parametrize("crash_after", ["move_out", "move_in"])
async def test_cross_slot_move_recovers_after_a_crash(
    cluster_lists: Maker, redis_cluster: RedisCluster, crash_after: str
) -> None:
    src, dst = await pair(redis_cluster, cluster_lists)
    job = Job(payload="survivor")
    out = await moved_out(src, dst, job)
    assert out[4] == b"mv-token"
    if crash_after == "move_in":
        target = src.keys.for_queue(dst.queue)
        args = [job.id, out[1], out[2], src.queue, 3600, 10, "mv-token"]
        assert int(await src._script("t", "move_in", [*key_block(target), target.key("inbox")], args)) == 1
        got = await dst.dequeue()  # consumed and acked before the source finished
        assert got is not None
        await dst.ack(got)
    assert await everything(src) == {}  # moving: in no state of the source
    assert await src.recover_moves(older_than=0) == 1
    assert await src.recover_moves(older_than=0) == 0
    assert await everything(src) == {}
    if crash_after == "move_in":
        assert await everything(dst) == {}, "a recovered move resurrected an acked job"
    else:
        assert await everything(dst) == {job.id: JobState.READY}


@pytest.mark.parametrize("skew", [-3600.0, 3600.0], ids=["clock-behind", "clock-ahead"])
async def test_an_interrupted_move_is_aged_on_the_servers_clock(
    cluster_lists: Maker, redis_cluster: RedisCluster, monkeypatch: pytest.MonkeyPatch, skew: float
) -> None:
    """A process whose clock is off by an hour neither takes a move still in flight for an
    interrupted one (ahead) nor leaves an interrupted one alone (behind)."""
    src, dst = await pair(redis_cluster, cluster_lists)
    job = Job(payload="in flight")
    await moved_out(src, dst, job)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + skew)
    assert await src.recover_moves(older_than=30) == 0, "the move began less than 30 s ago"
    await anyio.sleep(1.1)
    assert await src.recover_moves(older_than=1) == 1, "the move began over a second ago"
    assert await everything(src) == {}
    assert await everything(dst) == {job.id: JobState.READY}


async def test_cross_slot_move_onto_an_existing_id_puts_the_job_back(
    cluster_lists: Maker, redis_cluster: RedisCluster
) -> None:
    src, dst = await pair(redis_cluster, cluster_lists)
    first, second = Job(payload=1), Job(payload=2)
    await src.enqueue(first)
    await src.enqueue(second)
    await dst.enqueue(Job(id=second.id, payload="other"))
    with pytest.raises(DuplicateJobError):
        await src.move(second.id, dst.queue)
    assert [j.id async for j in src.iter()] == [first.id, second.id]  # back at its old position


async def test_migration_hold_and_restore_on_a_cluster(
    cluster_lists: Maker, redis_cluster: RedisCluster
) -> None:
    src, _ = await pair(redis_cluster, cluster_lists)
    jobs = [Job(payload=i, priority=i % 2) for i in range(5)]
    await src.enqueue_many(jobs)
    order = [j.id async for j in src.iter()]
    held = await src.migration_hold("mig", JobState.READY, 3)
    assert [j.id for j in held] == order[:3]
    assert all(j.state is JobState.READY for j in held)
    assert await src.length() == 2
    assert await src.migration_restore("mig") == 3
    assert [j.id async for j in src.iter()] == order


async def test_an_aborted_move_whose_list_entry_was_popped_goes_back_to_the_head(
    cluster_lists: Maker, redis_cluster: RedisCluster
) -> None:
    src, dst = await pair(redis_cluster, cluster_lists)
    first, second, third = Job(id="first"), Job(id="second"), Job(id="third")
    assert await src.enqueue_many([first, second, third]) == [True] * 3
    await dst.enqueue(Job(id="second", payload="other"))
    moving = src.keys.key("moving")
    out = await src._script("t", "move_out", [*src.block, moving], ["second", "", dst.queue])
    assert int(out[0]) == 1
    got = await src.dequeue_many(DequeueOptions(count=2))  # pops first and the stale entry of second
    assert [j.id for j in got] == ["first", "third"]
    await src.nack(got[1], requeue=True)  # third goes to the tail
    assert await src.recover_moves(older_than=0) == 1  # move_in refuses (-3): aborted, put back
    assert [j.id for j in await src.dequeue_many(DequeueOptions(count=5))] == ["second", "third"]
    assert await src.length() == 0


async def test_a_job_missing_here_but_stored_in_the_target_from_elsewhere_is_not_found(
    cluster_lists: Maker, redis_cluster: RedisCluster
) -> None:
    src, dst = await pair(redis_cluster, cluster_lists)
    await dst.enqueue(Job(id="x1", payload=1))  # stored there directly: never in src
    with pytest.raises(JobNotFoundError):
        await src.move("x1", dst.queue)
    assert await everything(dst) == {"x1": JobState.READY}

"""Strict-keys proof: every lists script runs under the checker prelude, and garbage in our
keys is dead-lettered with a reason instead of crashing a consumer or blocking the queue."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import anyio
import msgspec
import pytest

from queuestore import ALL, DequeueOptions, IterOptions, Job, JobState
from queuestore.backends.redis_lists import RedisListsBackend
from queuestore.backends.redis_lists.job_record import Meta
from tests.servers import RedisCluster, RedisServer

from .conftest import Maker, queues_on_distinct_nodes

pytestmark = pytest.mark.anyio

LUA = Path(__file__).resolve().parents[2] / "queuestore" / "backends" / "redis_lists" / "lua"


async def exercise(a: RedisListsBackend, target: str) -> None:
    """Every public operation of a backend (a is strict), moving to ``target``."""
    jobs = [Job(payload=i, priority=i % 3, idempotency_key=f"k{i}") for i in range(6)]
    assert await a.enqueue(jobs[0])
    assert await a.enqueue_many(jobs[1:]) == [True] * 5
    await a.enqueue(Job(payload="later").delayed(30))
    assert await a.peek(0) is not None
    found = await a.get_jobs([jobs[0].id, "never-enqueued"])
    assert found[0] is not None
    assert found[0].state is JobState.READY
    assert found[1] is None
    assert await a.length() == 7
    assert len([j async for j in a.iter(IterOptions(count=2))]) == 7
    one = await a.dequeue()
    assert one is not None
    await a.extend_lease(one, 5)
    await a.nack(one, requeue=True, error="x")
    many = await a.dequeue_many(DequeueOptions(count=3))
    assert await a.ack_many(many[:2]) == [True, True]
    await a.ack(many[2])
    await a.move((await a.dequeue()) or "missing", target)
    assert await a.recover_moves() == 0  # no move was interrupted
    with anyio.CancelScope() as scope:
        scope.cancel()  # a dequeue cancelled at once hands back what it may have leased
        await a.dequeue()
    held = await a.migration_hold("m1", JobState.READY, 1)
    assert len(await a.migration_held("m1")) == 1
    assert await a.migration_release("m1", [held[0].id]) == 1
    await a.migration_hold("m2", JobState.READY, 1)
    assert await a.migration_restore("m2") == 1
    assert await a.import_jobs([Job(payload="imp")]) == [True]
    got = await a.dequeue()  # a dead letter, redriven here
    assert got is not None
    await a.nack(got, requeue=False)
    assert await a.redrive([got.id]) == 1
    got = await a.dequeue()  # another, redriven to the target
    assert got is not None
    await a.nack(got, requeue=False)
    assert await a.redrive(ALL, to_queue=target) == 1
    assert await a.purge(JobState.DELAYED, ALL) == 1
    assert await a.enqueue(Job(id="del", payload=0))
    assert await a.delete("del") is True
    assert await a.drop_dead() == 0
    await a.reclaim()
    await a.stats()
    await a.health()


async def test_every_script_runs_under_strict_keys(
    lists: Maker, cluster_lists: Maker, redis_cluster: RedisCluster
) -> None:
    standalone = await lists()
    await exercise(standalone, "elsewhere")
    src, dst = queues_on_distinct_nodes(redis_cluster, cluster_lists)
    clustered = await cluster_lists(src)
    await exercise(clustered, dst)
    assert standalone.script_set.strict_keys
    assert clustered.script_set.strict_keys
    calls = Counter(standalone.script_set.calls) + Counter(clustered.script_set.calls)
    names = {p.stem for p in LUA.glob("*.lua") if not p.stem.startswith("_")}
    assert names == set(RedisListsBackend.script_names)
    assert not [n for n in names if calls[n] == 0], f"scripts never run: {calls}"


async def test_garbage_is_dead_lettered_with_a_reason(lists: Maker, redis_server: RedisServer) -> None:
    backend = await lists()
    r = redis_server.sync_client()
    base = lists.base(backend.queue)
    bad_body, no_body, bad_meta, good = Job(payload=1), Job(payload=2), Job(payload=3), Job(payload=4)
    for job in (bad_body, no_body, bad_meta, good):
        await backend.enqueue(job)
    r.hset(f"{base}:jobs", bad_body.id, b"\xc1 not msgpack")
    r.hdel(f"{base}:jobs", no_body.id)
    r.hset(f"{base}:meta", bad_meta.id, b"garbage")
    got = await backend.dequeue()
    assert got is not None
    assert got.id == good.id
    dead = {j.id: j async for j in backend.iter(IterOptions(states=(JobState.DEAD,)))}
    assert set(dead) == {bad_body.id, no_body.id, bad_meta.id}
    assert "undecodable" in (dead[bad_body.id].dead_reason or "")
    assert dead[no_body.id].dead_reason == "job body is missing"
    assert "metadata" in (dead[bad_meta.id].dead_reason or "")
    assert (await backend.stats()).dead == 3


async def test_records_of_the_wrong_types_and_states_are_dead_lettered(
    lists: Maker, redis_server: RedisServer
) -> None:
    """Wrong-typed cold fields, unknown state codes (ready, delayed, in flight, leased now) never
    stop a script: each is dead-lettered wherever a script meets it, and the real job flows."""
    backend = await lists()
    r = redis_server.sync_client()
    base = lists.base(backend.queue)
    past = time.time() - 5
    bad_types = msgspec.msgpack.encode({"mr": "x", "p": "high", "rc": [1], "x": "never", "le": 7})
    good = Job(payload="good")
    await backend.enqueue(good)
    r.hset(f"{base}:jobs", mapping={"g-ready": b"\xc1", "g-delayed": b"\xc1", "g-leased": b"\xc1"})
    r.hset(f"{base}:meta", "g-ready", b"r|0||||" + bad_types)
    r.lpush(f"{base}:ready:0", "g-ready")
    r.hset(f"{base}:meta", "g-delayed", b"d|0||||" + bad_types)
    r.zadd(f"{base}:delayed", {"g-delayed": 0})
    r.hset(f"{base}:meta", "g-leased", b"i|1|tok|%f|%f|" % (past, past) + bad_types)
    r.zadd(f"{base}:inflight", {"g-leased": -past})
    r.hset(f"{base}:meta", "g-state", b"q|0||||" + msgspec.msgpack.encode({"mr": 1}))
    r.lpush(f"{base}:ready:0", "g-state")
    r.hset(f"{base}:info", "due", 0)  # the next script sweeps
    got = await backend.dequeue_many(DequeueOptions(count=10))
    assert [j.id for j in got] == [good.id]
    assert await backend.enqueue(Job(payload="after")) is True
    dead = {j.id: j async for j in backend.iter(IterOptions(states=(JobState.DEAD,)))}
    assert set(dead) == {"g-ready", "g-delayed", "g-leased", "g-state"}
    assert all(r.hget(f"{base}:meta", gid).startswith(b"x|") for gid in dead)
    assert r.zcard(f"{base}:delayed") == 0
    assert r.zrange(f"{base}:inflight", 0, -1) == [good.id.encode()]


async def test_a_blocked_consumer_wakes_for_a_delayed_job(lists: Maker) -> None:
    backend = await lists(block_timeout=5)
    job = Job(payload=1).delayed(0.3)
    await backend.enqueue(job)
    with anyio.fail_after(2):
        got = await backend.dequeue(DequeueOptions(timeout=4))
    assert got is not None
    assert got.id == job.id


async def test_record_is_a_header_and_compact_msgpack(lists: Maker, redis_server: RedisServer) -> None:
    backend = await lists()
    job = Job(payload="x", priority=7, max_retries=2)
    await backend.enqueue(job)
    r = redis_server.sync_client()
    raw = r.hget(f"{lists.base(backend.queue)}:meta", job.id)
    st, attempt, token, started, deadline, cold = raw.split(b"|", 5)
    assert (st, attempt, token, started, deadline) == (b"r", b"0", b"", b"", b"")
    meta = msgspec.msgpack.decode(cold, type=Meta)
    assert (meta.p, meta.mr, meta.rc, meta.le) == (7, 2, 0, None)
    assert len(cold) < 16
    plain = Job(payload="y")  # defaults: only max_retries is written
    await backend.enqueue(plain)
    default_record = r.hget(f"{lists.base(backend.queue)}:meta", plain.id)
    assert default_record == b"r|0||||" + msgspec.msgpack.encode({"mr": 3})
    assert r.lrange(f"{lists.base(backend.queue)}:ready:7", 0, -1) == [job.id.encode()]
    got = await backend.dequeue()
    assert got is not None
    leased = r.hget(f"{lists.base(backend.queue)}:meta", job.id)
    st, attempt, token, started, deadline, rest = leased.split(b"|", 5)
    assert (st, attempt, token.decode(), rest) == (b"i", b"1", got.lease_token, cold)
    assert float(deadline) == got.lease_deadline

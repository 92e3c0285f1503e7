"""The plain-producer format: JSON objects pushed with ``redis-cli LPUSH`` onto a queue's
``ready`` list are adopted by dequeue and then live the normal lifecycle; malformed entries
are dead-lettered with a reason and never block the queue. Also: a backend refuses keys of
another layout under its prefix, naming what it found, and writes nothing to them."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import redis.asyncio as redis

from queuestore import ALL as ALL_JOBS
from queuestore import ConfigurationError, DequeueOptions, IterOptions, Job, JobState, SerializationError
from queuestore.backends.redis_lists import RedisListsBackend
from tests.servers import RedisCluster, RedisServer

from .conftest import Maker

pytestmark = pytest.mark.anyio
ALL = (JobState.READY, JobState.DELAYED, JobState.IN_FLIGHT, JobState.DEAD)


def lpush(port: int, key: str, *entries: str) -> None:
    """``redis-cli -p PORT LPUSH key entry...``: another OS process, no queuestore code."""
    cli = shutil.which("redis-cli")
    assert cli is not None, "redis-cli is needed to test plain producers"
    subprocess.run([cli, "-p", str(port), "LPUSH", key, *entries], check=True, capture_output=True)


async def everything(b: RedisListsBackend) -> dict[str, Job]:
    return {j.id: j async for j in b.iter(IterOptions(states=ALL))}


async def test_plain_entries_are_adopted_and_live_the_normal_lifecycle(
    lists: Maker, redis_server: RedisServer
) -> None:
    b = await lists()
    await b.enqueue(Job(id="ours-5", payload="mine", priority=5))
    ready = b.keys.key("ready")
    lpush(redis_server.port, ready, json.dumps({"payload": {"to": "a@b.c"}}))
    lpush(
        redis_server.port,
        ready,
        json.dumps({"payload": [1, 2], "id": "legacy-1", "type": "email", "priority": 7, "max_retries": 0}),
    )
    assert await b.length() == 3  # pending plain entries count as waiting
    first = await b.dequeue()
    assert first is not None
    assert (first.id, first.type, first.payload, first.priority, first.max_retries) == (
        "legacy-1",
        "email",
        [1, 2],
        7,
        0,
    )
    assert (first.state, first.attempt, first.queue) == (JobState.IN_FLIGHT, 1, b.queue)
    assert first.lease_token
    second = await b.dequeue()
    assert second is not None
    assert second.id == "ours-5"
    third = await b.dequeue()
    assert third is not None
    assert third.payload == {"to": "a@b.c"}
    assert third.id.startswith("plain-")  # an id was assigned
    assert (third.priority, third.max_retries, third.attempt) == (0, 3, 1)
    # everything after adoption is the normal lifecycle: nack past max_retries, requeue, ack
    await b.nack(first, error="boom")
    await b.nack(third, requeue=True, error="retry me")
    again = await b.dequeue()
    assert again is not None
    assert (again.id, again.retry_count, again.attempt, again.payload) == (third.id, 1, 2, {"to": "a@b.c"})
    await b.ack(again)
    await b.ack(second)
    stored = await everything(b)
    assert list(stored) == ["legacy-1"]
    assert (stored["legacy-1"].state, stored["legacy-1"].dead_reason) == (JobState.DEAD, "boom")
    assert (await b.get_jobs(["legacy-1"]))[0] == stored["legacy-1"]


async def test_malformed_entries_are_dead_lettered_and_never_block(
    lists: Maker, redis_server: RedisServer
) -> None:
    b = await lists()
    ready = b.keys.key("ready")
    bad = {
        "not json at all": "not a JSON object",
        "[1, 2]": "not a JSON object",
        json.dumps({"no": "payload"}): "no payload",
        json.dumps({"payload": 1, "priority": 42}): "priority",
        json.dumps({"payload": 1, "priority": 1.5}): "priority",
        json.dumps({"payload": 1, "max_retries": -1}): "max_retries",
        json.dumps({"payload": 1, "id": ""}): "id",
        json.dumps({"payload": 1, "type": 3}): "type",
    }
    lpush(redis_server.port, ready, *bad, json.dumps({"payload": "good"}))
    got = await b.dequeue()
    assert got is not None
    assert got.payload == "good"
    dead = [j async for j in b.iter(IterOptions(states=(JobState.DEAD,)))]
    assert len(dead) == len(bad)
    for job, (entry, why) in zip(dead, bad.items(), strict=True):  # dead in arrival order
        assert job.dead_reason is not None
        assert job.dead_reason.startswith("malformed plain entry: ")
        assert why in job.dead_reason
        assert job.state is JobState.DEAD
        # the entry as pushed is kept: one that reads as a job shows its payload, the others
        # come back marked corrupt with the entry's bytes
        if (job.last_error or "").startswith("corrupt: "):
            assert entry.encode() in job.payload
        else:
            assert job.last_error == job.dead_reason
            assert job.payload == json.loads(entry)["payload"]
    assert (await b.stats()).dead == len(bad)
    assert await b.dequeue() is None


async def test_a_plain_entry_with_a_stored_id_is_not_a_second_copy(
    lists: Maker, redis_server: RedisServer
) -> None:
    b = await lists()
    await b.enqueue(Job(id="dup", payload="original"))
    lpush(redis_server.port, b.keys.key("ready"), json.dumps({"id": "dup", "payload": "copy"}))
    got = await b.dequeue_many(DequeueOptions(count=10))
    assert [(j.id, j.payload) for j in got] == [("dup", "original")]
    assert await b.length() == 0
    assert await everything(b) == {"dup": got[0]} or list(await everything(b)) == ["dup"]


async def test_plain_entries_wait_for_a_blocked_consumer_on_a_cluster(
    cluster_lists: Maker, redis_cluster: RedisCluster
) -> None:
    b = await cluster_lists()
    client = redis_cluster.sync_client()
    client.lpush(b.keys.key("ready"), json.dumps({"payload": "clustered", "priority": 3}))
    got = await b.dequeue(DequeueOptions(timeout=2.0))
    assert got is not None
    assert (got.payload, got.priority) == ("clustered", 3)
    await b.ack(got)
    assert await everything(b) == {}


async def test_foreign_layouts_are_refused_by_name(lists: Maker, redis_server: RedisServer) -> None:
    r = redis_server.sync_client()
    cases = {
        "old": ("redis-lists 0.1 sorted-set layout", lambda base: r.zadd(f"{base}:ready", {"j1": 1.0})),
        "oldseq": ("redis-lists 0.1 sorted-set layout", lambda base: r.set(f"{base}:seq", 3)),
        "streams": ("redis-streams", lambda base: r.xadd(f"{base}:jobs", {"j": "x", "b": "y"})),
        "marker": ("redis-lists/9", lambda base: r.hset(f"{base}:info", "layout", "redis-lists/9")),
        "unmarked": ("without a layout marker", lambda base: r.hset(f"{base}:meta", "j1", b"\x85")),
        "odd": ("is a string", lambda base: r.set(f"{base}:ready:3", "x")),
    }
    for stem, (name, plant) in cases.items():
        queue = f"{stem}-{lists.queue}"
        base = lists.base(queue)
        plant(base)
        before = {k: r.dump(k) for k in r.keys(f"{base}*")}
        with pytest.raises(ConfigurationError) as err:
            await lists(queue)
        assert err.value.field == "queue"
        assert name in str(err.value), str(err.value)
        assert queue in str(err.value)
        assert {k: r.dump(k) for k in r.keys(f"{base}*")} == before  # nothing written
    # a queue of this layout opens again (marked at its first open)
    b = await lists()
    await b.enqueue(Job(id="kept"))
    assert r.hget(f"{lists.base(b.queue)}:info", "layout") == b"redis-lists/2"
    again = await lists()
    assert [j.id for j in await again.dequeue_many(DequeueOptions(count=5))] == ["kept"]


async def test_entries_that_are_not_utf8_are_dead_lettered_and_never_block(
    lists: Maker, redis_server: RedisServer
) -> None:
    b = await lists()
    bad = {  # an entry as pushed (bytes) -> what its dead letter's reason names
        b'{"payload": 1, "id": "\xff\xfe"}': "id must be valid UTF-8",
        b'{"payload": 2, "id": "ok\xc0\xaf"}': "id must be valid UTF-8",  # an overlong "/"
        b'{"payload": 3, "id": "\xed\xa0\x80"}': "id must be valid UTF-8",  # a surrogate
        b'{"payload": 4, "id": "\xf4\x90\x80\x80"}': "id must be valid UTF-8",  # past U+10FFFF
        b'{"payload": 5, "id": "cut\xe2\x82"}': "id must be valid UTF-8",  # a truncated sequence
        b'{"payload": 7, "id": "\\udc00"}': "not a JSON object",  # lua-cjson refuses a lone surrogate
        b'{"payload": 6, "id": "t-1", "type": "\xff"}': "type must be valid UTF-8",
        b'{"payload": "\xc3\x28", "id": "p-1"}': "Invalid UTF-8",
        b'{"payload": {"\xff": 1}}': "Invalid UTF-8",
    }
    good = [  # valid UTF-8 ids and types are adopted as they are; unknown keys are ignored
        b'{"payload": "first", "id": "g-1"}',
        '{"payload": "second", "id": "grüße-✓-𝄞", "type": "tâche"}'.encode(),
        b'{"payload": "third", "id": "g-3", "ignored": "\xff"}',
    ]
    raw = redis.Redis.from_url(redis_server.url)
    try:
        entries = [good[0], *list(bad)[:4], good[1], *list(bad)[4:], good[2]]
        await raw.lpush(b.keys.key("ready"), *entries)
    finally:
        await raw.aclose()
    got = [await b.dequeue() for _ in range(3)]
    assert [(j.id, j.type, j.payload) for j in got if j] == [
        ("g-1", "", "first"),
        ("grüße-✓-𝄞", "tâche", "second"),
        ("g-3", "", "third"),
    ]
    assert await b.dequeue() is None
    for job in got:
        assert job is not None
        await b.ack(job)
    dead = [j async for j in b.iter(IterOptions(states=(JobState.DEAD,)))]
    assert len(dead) == len(bad)
    for job, why in zip(dead, bad.values(), strict=True):  # dead in arrival order
        assert job.state is JobState.DEAD
        assert job.dead_reason is not None
        assert why in job.dead_reason, job.dead_reason
        assert job.id.encode().isascii()  # a generated id where the entry's would not do
    assert (await b.stats()).dead == len(bad)
    assert await b.get_jobs([j.id for j in dead[:5]]) == dead[:5]  # the entries read as jobs
    with pytest.raises(SerializationError):  # these do not: a lookup names them, typed
        await b.get_jobs([j.id for j in dead[5:]])
    assert await b.redrive(ALL_JOBS) == len(bad)

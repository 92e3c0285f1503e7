"""An entry's body does not repeat the job's id (the entry's ``j`` field) or its queue (the
stream's): the job reads back whole."""

from __future__ import annotations

import time

import msgspec
import pytest

from queuestore import DequeueOptions, IterOptions, Job, JobState
from queuestore._codec import JobCodec
from queuestore.backends.redis_streams.layout import enqueued_entry_job, entry_job, fields_map
from tests.servers import RedisServer

from .conftest import Maker

pytestmark = pytest.mark.anyio


async def test_the_body_carries_no_id_or_queue(make: Maker, redis_server: RedisServer) -> None:
    b = await make()
    job = Job(id="whole", type="mail", payload={"to": "a@b.c"}, max_retries=5, metadata={"k": "v"})
    assert await b.enqueue(job)
    entries = redis_server.sync_client().xrange(b.store.keys.stream)
    assert len(entries) == 1
    fields = entries[0][1]
    assert fields[b"j"] == b"whole"
    stored = msgspec.msgpack.decode(fields[b"b"])
    assert stored["id"] == ""
    assert "queue" not in stored
    got = await b.dequeue(DequeueOptions(timeout=0))
    assert got is not None
    assert (got.id, got.queue, got.type, got.payload) == ("whole", b.queue, "mail", {"to": "a@b.c"})
    assert (got.max_retries, got.metadata, got.created_at) == (5, {"k": "v"}, job.created_at)
    await b.ack(got)


@pytest.mark.parametrize("deliveries", [1, 3])
async def test_an_enqueued_entry_read_at_its_places_is_the_job_the_fields_map_gives(
    make: Maker, redis_server: RedisServer, deliveries: int
) -> None:
    b = await make()
    job = Job(id="placed", type="mail", payload={"n": 1}, max_retries=7, tags=["t"], expires_at=4e9)
    assert await b.enqueue(job)
    [(_, fields)] = redis_server.sync_client().xrange(b.store.keys.stream)
    raw = [x for kv in fields.items() for x in kv]
    assert raw[::2] == [b"j", b"b", b"r", b"m", b"a", b"x"]
    raw[5], raw[9] = b"2", b"4"  # as a requeued entry carries its retries and attempts
    fast = enqueued_entry_job(b.store.codec, raw, deliveries)
    assert fast is not None
    fast.queue = b.queue
    slow = entry_job(b.store.codec, b.queue, fields_map(raw), JobState.IN_FLIGHT, deliveries)
    assert fast == slow
    assert (fast.retry_count, fast.attempt) == (2 + deliveries - 1, 4 + deliveries)


def test_an_entry_of_another_shape_is_left_to_the_fields_map() -> None:
    codec = JobCodec()
    body = codec.encode(Job(id="", payload=1))
    plain = [b"j", b"x1", b"b", body, b"r", b"0", b"m", b"3", b"a", b"0", b"x", b"0"]
    assert enqueued_entry_job(codec, plain, 1) is not None
    assert enqueued_entry_job(codec, [*plain, b"e", b"boom"], 1) is None  # a last error rides along
    assert enqueued_entry_job(codec, [b"b", *plain[1:]], 1) is None
    assert enqueued_entry_job(codec, [*plain[:3], b"\xc1garbage", *plain[4:]], 1) is None
    assert enqueued_entry_job(codec, [*plain[:5], b"", *plain[6:]], 1) is None
    assert enqueued_entry_job(codec, dict(enumerate(plain)), 1) is None  # not a flat reply


async def test_bytes_that_are_not_utf8_in_an_entry_never_escape_untyped(make: Maker) -> None:
    b = await make()
    raw = b.conn.client
    await b.enqueue(Job(id="model", payload="x"))
    [(eid, fields)] = await raw.xrange(b.skeys.stream)
    await raw.xdel(b.skeys.stream, eid)
    await raw.hdel(b.skeys.idx, "model")
    named = dict(fields)
    named[b"j"], named[b"\xffodd"] = b"odd-name", b"1"  # a field name no decoder reads: ignored
    await raw.hset(b.skeys.idx, "odd-name", await raw.xadd(b.skeys.stream, named))
    await raw.xadd(b.skeys.stream, {**fields, b"j": b"\xffbad"})  # an id no consumer can decode
    await b.enqueue(Job(id="after"))
    got = await b.dequeue_many(DequeueOptions(count=3))
    assert [j.id for j in got] == ["odd-name", "after"]
    assert await b.ack_many(got) == [True, True]
    dead = await raw.xrange(b.skeys.dead)
    assert [(e[1][b"j"], e[1][b"why"][:17]) for e in dead] == [(b"\xffbad", b"undecodable entry")]


async def test_a_delayed_id_that_is_not_utf8_is_skipped_by_a_listing_and_counted(make: Maker) -> None:
    b = await make()
    raw = b.conn.client
    due = time.time() + 3600
    assert await b.enqueue(Job(id="first", available_at=due))
    body, meta = await raw.hget(b.skeys.parked, "first"), await raw.hget(b.skeys.meta, "first")
    bad = b"\xffodd"  # a delayed job written into our keys under an id no consumer can decode
    await raw.hset(b.skeys.parked, bad, body)
    if meta is not None:
        await raw.hset(b.skeys.meta, bad, meta)
    await raw.zadd(b.skeys.delayed, {bad: int(due * 1000) + 1})
    assert await b.enqueue(Job(id="last", available_at=due + 1))
    listed = [j async for j in b.iter(IterOptions(states=(JobState.DELAYED,), count=1))]
    assert [j.id for j in listed] == ["first", "last"]  # paged past, never raised
    assert b.store.corrupt_entries == 1
    assert await raw.zscore(b.skeys.delayed, bad) is not None  # skipped, not lost

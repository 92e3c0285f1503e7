"""A job's stored body holds only what its record does not: the id is the hash field, the
queue is the key, and priority, retries, times and errors live in the record. The job reads
back whole."""

from __future__ import annotations

import time

import msgspec
import pytest

from queuestore import DequeueOptions, Job, JobState
from tests.servers import RedisServer

from .conftest import Maker

pytestmark = pytest.mark.anyio

_BODY_FIELDS = {"type", "payload", "created_at", "completed_at", "metadata", "tags", "idempotency_key"}


async def test_the_body_does_not_repeat_the_record(lists: Maker, redis_server: RedisServer) -> None:
    b = await lists()
    now = time.time()
    job = Job(
        id="whole",
        type="mail",
        payload={"to": "a@b.c"},
        priority=7,
        max_retries=5,
        retry_count=1,
        created_at=now - 5,
        completed_at=now - 1,
        metadata={"k": "v"},
        tags=["t"],
        expires_at=now + 600,
        idempotency_key="idem-1",
    ).delayed(300)
    assert await b.enqueue(job)
    raw = redis_server.sync_client().hget(b.keys.key("jobs"), "whole")
    assert isinstance(raw, bytes)
    stored = msgspec.msgpack.decode(raw)
    assert set(stored) == _BODY_FIELDS
    got = (await b.get_jobs(["whole"]))[0]
    assert got is not None
    assert got.state is JobState.DELAYED
    for field in ("id", "type", "payload", "priority", "max_retries", "retry_count", "created_at"):
        assert getattr(got, field) == getattr(job, field), field
    for field in ("completed_at", "metadata", "tags", "expires_at", "available_at", "idempotency_key"):
        assert getattr(got, field) == getattr(job, field), field
    assert got.queue == b.queue


async def test_a_default_job_stores_a_short_body(lists: Maker, redis_server: RedisServer) -> None:
    b = await lists()
    assert await b.enqueue(Job(id="plain", payload="x"))
    raw = redis_server.sync_client().hget(b.keys.key("jobs"), "plain")
    assert isinstance(raw, bytes)
    assert set(msgspec.msgpack.decode(raw)) == {"payload", "created_at"}
    peeked = await b.peek(0)
    assert peeked is not None
    assert (peeked.id, peeked.queue, peeked.payload) == ("plain", b.queue, "x")


async def test_a_leased_job_reads_the_same_on_the_lean_path(lists: Maker, redis_server: RedisServer) -> None:
    """A take's leased jobs are read without a Record; what they read is what the general
    reading gives for the same stored bytes."""
    b = await lists()
    now = time.time()
    job = Job(id="lean", type="t", payload=[1], priority=3, max_retries=4, retry_count=2)
    job.expires_at = now + 600
    job.last_error, job.origin_queue = "boom", "elsewhere"
    assert await b.enqueue(job)
    got = await b.dequeue(DequeueOptions(timeout=0))
    assert got is not None
    client = redis_server.sync_client()
    body, record = client.hget(b.keys.key("jobs"), "lean"), client.hget(b.keys.key("meta"), "lean")
    assert isinstance(body, bytes)
    assert isinstance(record, bytes)
    assert record.startswith(b"i|")
    layout = b._ctx.layout
    lean, bad = layout.read_job("lean", body, record)
    general, bad_too = layout.read_job("lean", body, bytearray(record))  # not bytes: the general path
    assert bad is bad_too is None
    assert lean == general == got
    assert (lean.state, lean.priority, lean.retry_count, lean.attempt) == (JobState.IN_FLIGHT, 3, 2, 1)
    assert (lean.last_error, lean.origin_queue, lean.lease_token) == ("boom", "elsewhere", got.lease_token)
    garbage = record.replace(b"i|1|", b"i|x|")  # left to the general path, which names it
    assert layout.read_job("lean", body, garbage)[1] is not None

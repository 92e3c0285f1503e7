"""A lone ``enqueue()`` of a plain ready job is stored by ``enqueue_one.lua`` (few keys, a small
part of the library); a job with a TTL, a delay or an idempotency key, and any call made while
the queue's sweep is due, is stored by ``enqueue.lua`` as before -- with the ready order kept:
what came due goes first."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from queuestore import BackendConfig, DequeueOptions, Job, QueueBackend, default_registry
from queuestore.backends._redis.base import RedisBackendBase
from queuestore.testing import RedisServer

pytestmark = pytest.mark.anyio

TYPES = ["redis-lists", "redis-streams"]

Make = Callable[..., Any]


@pytest.fixture
async def make(redis_server: RedisServer) -> AsyncIterator[Make]:
    made: list[QueueBackend] = []

    async def create(type_: str, **options: Any) -> RedisBackendBase:
        cfg = BackendConfig(
            type=type_,
            name=f"{type_}-lone",
            url=redis_server.url,
            queue=f"q-{uuid.uuid4().hex[:8]}",
            options={"strict_keys": True, "coalesce": False, "reclaim_interval": "1h", **options},
        )
        backend = await default_registry().create(type_, cfg)
        made.append(backend)
        assert isinstance(backend, RedisBackendBase)
        return backend

    yield create
    for backend in made:
        await backend.aclose()


def _runs(b: RedisBackendBase) -> tuple[int, int]:
    """How many times ``enqueue_one`` and ``enqueue`` ran so far."""
    return b.script_set.calls["enqueue_one"], b.script_set.calls["enqueue"]


@pytest.mark.parametrize("type_", TYPES)
async def test_a_plain_ready_job_is_stored_by_the_lean_script(make: Make, type_: str) -> None:
    b = await make(type_)
    await b.enqueue(Job(id="first"))  # a new queue: its first store may sweep
    before = _runs(b)
    assert await b.enqueue(Job(id="a", payload={"n": 1}, priority=7)) is True
    assert await b.enqueue(Job(id="a")) is False
    one, full = _runs(b)
    assert (one - before[0], full - before[1]) == (2, 0)
    (got,) = await b.get_jobs(["a"])
    assert got is not None
    assert (got.id, got.payload, got.priority) == ("a", {"n": 1}, 7)


@pytest.mark.parametrize("type_", TYPES)
@pytest.mark.parametrize(
    "job",
    [
        Job(id="ttl", expires_at=time.time() + 3600),
        Job(id="later", available_at=time.time() + 3600),
        Job(id="keyed", idempotency_key="k1"),
    ],
    ids=["ttl", "delayed", "idempotency-key"],
)
async def test_other_jobs_are_stored_by_the_full_script(make: Make, type_: str, job: Job) -> None:
    b = await make(type_)
    before = _runs(b)
    assert await b.enqueue(job) is True
    one, full = _runs(b)
    assert (one - before[0], full - before[1]) == (0, 1)
    assert (await b.get_jobs([job.id]))[0] is not None


@pytest.mark.parametrize("type_", TYPES)
async def test_when_something_is_due_the_full_script_makes_it_ready_first(make: Make, type_: str) -> None:
    b = await make(type_)
    assert await b.enqueue(Job(id="due-soon", available_at=time.time() + 0.3)) is True
    assert await b.enqueue(Job(id="plain-1")) is True  # nothing due yet: the lean script
    await anyio.sleep(0.5)
    before = _runs(b)
    assert await b.enqueue(Job(id="plain-2")) is True  # declined by the lean script: the full one
    one, full = _runs(b)
    assert (one - before[0], full - before[1]) == (1, 1)
    order = []
    while (job := await b.dequeue(DequeueOptions(timeout=0.0))) is not None:
        order.append(job.id)
    # the delayed job came due before plain-2 was stored, so it is ready before it
    assert order == ["plain-1", "due-soon", "plain-2"]

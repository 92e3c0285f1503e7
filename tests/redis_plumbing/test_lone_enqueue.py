"""A lone ``enqueue()`` of a plain ready job is stored by ``enqueue_one.lua`` (few keys, a small
part of the library); a job with a TTL, a delay or an idempotency key, and any call made while
the queue's sweep is due, is stored by ``enqueue.lua`` as before -- with the ready order kept:
what came due goes first."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import pytest

from queuestore import DequeueOptions, Job
from queuestore.backends._redis.base import RedisBackendBase
from queuestore.errors import OutcomeUnknownError
from queuestore.testing import RedisServer

from .conftest import Make, backend_maker

pytestmark = pytest.mark.anyio

TYPES = ["redis-lists", "redis-streams"]


@pytest.fixture
async def make(redis_server: RedisServer) -> AsyncIterator[Make]:
    options = {"strict_keys": True, "coalesce": False, "reclaim_interval": "1h"}
    async with backend_maker(redis_server.url, "lone", **options) as create:
        yield create


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


def _fix_call_ids(monkeypatch: pytest.MonkeyPatch, type_: str, cid: str) -> None:
    """Every new call of a ``type_`` backend gets the call id ``cid`` (so a second call is, to the
    server, a retry of the first)."""
    module = "redis_lists.context" if type_ == "redis-lists" else "redis_streams.store"
    monkeypatch.setattr(f"queuestore.backends.{module}.call_id", lambda: cid)


def _calls_key(b: RedisBackendBase) -> str:
    if hasattr(b, "store"):  # redis-streams
        return b.store.keys.calls  # type: ignore[attr-defined,no-any-return]
    return b.keys.key("calls")  # type: ignore[attr-defined,no-any-return]


def _records(b: RedisBackendBase, redis_server: RedisServer) -> dict[bytes, bytes]:
    return dict(redis_server.sync_client().hgetall(_calls_key(b)))


@pytest.mark.parametrize("type_", TYPES)
async def test_a_repeated_call_id_gets_the_recorded_reply_in_the_library_format(
    make: Make, type_: str, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = await make(type_)
    await b.enqueue(Job(id="first"))  # a new queue: its first store may sweep
    _fix_call_ids(monkeypatch, type_, "cid-lone")
    before = _runs(b)
    assert await b.enqueue(Job(id="a")) is True
    # the library's record of one status, which the full script reads back too
    assert _records(b, redis_server)[b"cid-lone"] == (b"#1" if type_ == "redis-lists" else b"[1]")
    # the same call id again: the recorded reply, and nothing stored
    assert await b.enqueue(Job(id="b")) is True
    assert _runs(b)[0] - before[0] == 2
    assert [j is not None for j in await b.get_jobs(["a", "b"])] == [True, False]


@pytest.mark.parametrize("type_", TYPES)
async def test_an_unreadable_call_record_is_an_unknown_outcome(
    make: Make, type_: str, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = await make(type_)
    await b.enqueue(Job(id="first"))
    assert await b.enqueue(Job(id="second"))  # the call record hash exists
    redis_server.sync_client().hset(_calls_key(b), "cid-bad", b"#?" if type_ == "redis-lists" else b"[1")
    _fix_call_ids(monkeypatch, type_, "cid-bad")
    with pytest.raises(OutcomeUnknownError):
        await b.enqueue(Job(id="c"))
    assert (await b.get_jobs(["c"]))[0] is None


@pytest.mark.parametrize("type_", TYPES)
async def test_lone_enqueues_alone_prune_call_records_past_their_window(
    make: Make, type_: str, redis_server: RedisServer
) -> None:
    b = await make(type_)
    await b.enqueue(Job(id="first"))
    streams = type_ == "redis-streams"  # its record times are in ms
    if streams:
        calls, times = b.store.keys.calls, b.store.keys.calls_at  # type: ignore[attr-defined]
    else:
        calls, times = b.keys.key("calls"), b.keys.key("calltimes")  # type: ignore[attr-defined]
    r = redis_server.sync_client()
    now = float(r.time()[0])
    old = (now - 120.0) * (1000 if streams else 1)  # records of calls two minutes ago
    for i in range(100):
        r.hset(calls, f"old{i}", "[1]")
        r.zadd(times, {f"old{i}": old})
    before = _runs(b)
    for i in range(100):  # about one call in 8 has its turn to prune, up to 64 records each
        assert await b.enqueue(Job(id=f"j{i}")) is True
    one, full = _runs(b)
    assert r.zcount(times, "-inf", old) == 0
    assert not any(r.hexists(calls, f"old{i}") for i in range(100))
    # the lean script declined the calls whose turn found something to prune, and only those
    assert 2 <= full - before[1] <= 4
    assert one - before[0] == 100

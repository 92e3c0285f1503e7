"""Truthful outcomes on redis-lists: a reply lost after the server ran the call (swallowed, or
the connection reset) is retried with the same call id, and the caller gets what really
happened -- checked against the server's state, job by job. With no retries left, the caller
gets OutcomeUnknownError, never a definite-sounding error."""

from __future__ import annotations

from typing import Any

import pytest
from redis.exceptions import ResponseError

from queuestore import (
    DequeueOptions,
    Job,
    JobNotFoundError,
    JobState,
    OutcomeUnknownError,
    error_code,
    is_retryable,
)
from queuestore.backends.redis_lists import RedisListsBackend
from queuestore.backends.redis_lists.layout import KEY_SUFFIXES

from .conftest import ListsMaker
from .proxy import Fault, FaultProxy, script_call

pytestmark = pytest.mark.anyio

KINDS = ["drop", "reset"]


def arm(
    proxy: FaultProxy, backend: RedisListsBackend, kind: str, script: str, op: str | None = None
) -> Fault:
    match = script_call(backend.script_set.scripts[script].sha, op)
    return proxy.drop_reply(match) if kind == "drop" else proxy.reset_after(match)


def key(b: RedisListsBackend, suffix: str) -> str:
    return b.block[KEY_SUFFIXES.index(suffix)]


async def state(direct: RedisListsBackend, job_id: str) -> JobState | None:
    job = (await direct.get_jobs([job_id]))[0]
    return None if job is None else job.state


async def in_flight(direct: RedisListsBackend) -> list[str]:
    return [k.decode() for k in await direct.conn.client.zrange(key(direct, "inflight"), 0, -1)]


async def pair(lists: ListsMaker, **options: Any) -> tuple[RedisListsBackend, RedisListsBackend]:
    return await lists(**options), await lists(via_proxy=False, **options)


@pytest.mark.parametrize("kind", KINDS)
async def test_enqueue(lists: ListsMaker, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(lists)
    fault = arm(proxy, b, kind, "enqueue", "enqueue")
    assert await b.enqueue(Job(id="e1", payload=1)) is True, "the job was stored by this call"
    assert fault.hits == 1
    assert await state(direct, "e1") == JobState.READY
    assert await direct.length() == 1
    assert await b.enqueue(Job(id="e1", payload=1)) is False, "a new call sees it stored"


@pytest.mark.parametrize("kind", KINDS)
async def test_enqueue_many(lists: ListsMaker, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(lists)
    await b.enqueue(Job(id="old", payload=0))
    fault = arm(proxy, b, kind, "enqueue", "enqueue")
    out = await b.enqueue_many([Job(id="m1", payload=1), Job(id="old", payload=0), Job(id="m2", payload=2)])
    assert out == [True, False, True]
    assert fault.hits == 1
    assert await direct.length() == 3


@pytest.mark.parametrize("kind", KINDS)
async def test_dequeue(lists: ListsMaker, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(lists)
    await direct.enqueue_many([Job(id=f"d{i}", payload=i) for i in range(3)])
    fault = arm(proxy, b, kind, "dequeue")
    got = await b.dequeue()
    assert fault.hits == 1
    assert got is not None
    assert got.id == "d0"
    assert await in_flight(direct) == ["d0"], "one call, one lease"
    assert await state(direct, "d1") == JobState.READY
    await b.ack(got)
    assert await in_flight(direct) == []


@pytest.mark.parametrize("kind", KINDS)
async def test_dequeue_many(lists: ListsMaker, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(lists)
    await direct.enqueue_many([Job(id=f"d{i}", payload=i) for i in range(5)])
    fault = arm(proxy, b, kind, "dequeue")
    got = await b.dequeue_many(DequeueOptions(count=3))
    assert fault.hits == 1
    assert [j.id for j in got] == ["d0", "d1", "d2"]
    assert sorted(await in_flight(direct)) == ["d0", "d1", "d2"]
    assert await b.ack_many(got) == [True] * 3
    assert [j.id for j in await b.dequeue_many(DequeueOptions(count=5))] == ["d3", "d4"]


@pytest.mark.parametrize("kind", KINDS)
async def test_ack(lists: ListsMaker, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(lists)
    await b.enqueue(Job(id="a1", payload=1))
    got = await b.dequeue()
    assert got is not None
    fault = arm(proxy, b, kind, "ack")
    await b.ack(got)  # no JobNotFoundError: this call acked it
    assert fault.hits == 1
    assert await state(direct, "a1") is None
    assert await in_flight(direct) == []


@pytest.mark.parametrize("kind", KINDS)
async def test_ack_many(lists: ListsMaker, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(lists)
    await b.enqueue_many([Job(id=f"a{i}", payload=i) for i in range(3)])
    got = await b.dequeue_many(DequeueOptions(count=3))
    fault = arm(proxy, b, kind, "ack")
    assert await b.ack_many([*got, "never-enqueued"]) == [True, True, True, False]
    assert fault.hits == 1
    assert await in_flight(direct) == []
    assert await direct.get_jobs([j.id for j in got]) == [None, None, None]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("requeue", [False, True])
async def test_nack(lists: ListsMaker, proxy: FaultProxy, kind: str, requeue: bool) -> None:
    b, direct = await pair(lists)
    await b.enqueue(Job(id="n1", payload=1, max_retries=3))
    got = await b.dequeue()
    assert got is not None
    fault = arm(proxy, b, kind, "nack")
    await b.nack(got, requeue=requeue)  # no LeaseLostError: this call settled it
    assert fault.hits == 1
    job = (await direct.get_jobs(["n1"]))[0]
    assert job is not None
    assert job.state == (JobState.READY if requeue else JobState.DEAD)
    assert job.retry_count == (1 if requeue else 0), "one nack, one retry counted"
    assert await in_flight(direct) == []
    if requeue:
        again = await b.dequeue()
        assert again is not None
        assert again.id == "n1"
        assert again.retry_count == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_move(lists: ListsMaker, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(lists)
    target = await lists(via_proxy=False, queue="q-dlq")
    await b.enqueue(Job(id="mv", payload=1))
    got = await b.dequeue()
    assert got is not None
    fault = arm(proxy, b, kind, "move")
    await b.move(got, "q-dlq")
    assert fault.hits == 1
    assert await state(direct, "mv") is None
    assert await state(target, "mv") == JobState.READY
    assert await target.length() == 1


async def test_a_job_missing_here_but_in_the_target_from_elsewhere_is_not_found(lists: ListsMaker) -> None:
    b = await lists(via_proxy=False)
    target = await lists(via_proxy=False, queue="q-other")
    await target.enqueue(Job(id="x1", payload=1))  # stored there directly: not moved from b
    with pytest.raises(JobNotFoundError) as info:
        await b.move("x1", "q-other")
    assert error_code(info.value) == "JOB_NOT_FOUND"
    assert await state(target, "x1") == JobState.READY


async def test_two_lost_replies_in_a_row_still_one_effect(lists: ListsMaker, proxy: FaultProxy) -> None:
    b = await lists()
    await b.enqueue(Job(id="t1", payload=1, max_retries=5))
    got = await b.dequeue()
    assert got is not None
    sha = b.script_set.scripts["nack"].sha
    drop = proxy.drop_reply(script_call(sha))
    reset = proxy.reset_after(script_call(sha))  # the next one: drop took the first
    await b.nack(got, requeue=True)
    assert (drop.hits, reset.hits) == (1, 1)
    again = await b.dequeue()
    assert again is not None
    assert again.retry_count == 1, "one nack, not three"
    assert await b.dequeue() is None, "one ready entry, not three"


@pytest.mark.parametrize("kind", KINDS)
async def test_no_retries_left_is_an_unknown_outcome(lists: ListsMaker, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(lists, max_retries=0)
    await b.enqueue(Job(id="u1", payload=1))
    got = await b.dequeue()
    assert got is not None
    arm(proxy, b, kind, "ack")
    with pytest.raises(OutcomeUnknownError) as info:
        await b.ack(got)
    assert error_code(info.value) == "OUTCOME_UNKNOWN"
    assert is_retryable(info.value)
    assert await state(direct, "u1") is None, "it did take effect: only the reply was lost"
    arm(proxy, b, kind, "enqueue", "enqueue")
    with pytest.raises(OutcomeUnknownError):
        await b.enqueue(Job(id="u2", payload=2))
    assert await b.enqueue(Job(id="u2", payload=2)) is False, "retrying by id is safe"


async def test_an_unreadable_call_record_is_an_unknown_outcome(lists: ListsMaker) -> None:
    b = await lists(via_proxy=False)
    await b.enqueue(Job(id="g1", payload=1))
    got = await b.dequeue()
    assert got is not None
    calls = key(b, "calls")
    await b.conn.client.hset(calls, "cid-garbage", b"\xff not json")
    sha = b.script_set.scripts["ack"].sha
    with pytest.raises(ResponseError) as info:
        await b.conn.client.evalsha(
            sha, len(b.layout.state_block), *b.layout.state_block, "cid-garbage", "g1", ""
        )
    assert "QSUNKNOWN" in str(info.value)
    assert await state(b, "g1") == JobState.IN_FLIGHT, "nothing was done on a guess"

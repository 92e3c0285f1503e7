"""Truthful outcomes on redis-streams: a reply lost after the server ran the call (swallowed,
or the connection reset) is retried with the same call id, and the caller gets what really
happened -- checked against the server's state, job by job. With no retries left, the caller
gets OutcomeUnknownError, never a definite-sounding error."""

from __future__ import annotations

from typing import Any

import pytest

from queuestore import DequeueOptions, Job, JobState, OutcomeUnknownError, error_code, is_retryable
from queuestore.backends.redis_streams import RedisStreamsBackend

from .conftest import StreamsMaker
from .proxy import Fault, FaultProxy, script_call

pytestmark = pytest.mark.anyio

KINDS = ["drop", "reset"]


def arm(proxy: FaultProxy, backend: RedisStreamsBackend, kind: str, script: str, op: str | None) -> Fault:
    match = script_call(backend.script_set.scripts[script].sha, op)
    return proxy.drop_reply(match) if kind == "drop" else proxy.reset_after(match)


async def state(direct: RedisStreamsBackend, job_id: str) -> JobState | None:
    job = (await direct.get_jobs([job_id]))[0]
    return None if job is None else job.state


async def pending(direct: RedisStreamsBackend) -> list[str]:
    rows = await direct.conn.client.xpending_range(direct.skeys.stream, direct.group, "-", "+", 100)
    return [r["message_id"].decode() for r in rows]


async def pair(streams: StreamsMaker, **options: Any) -> tuple[RedisStreamsBackend, RedisStreamsBackend]:
    return await streams(**options), await streams(via_proxy=False, **options)


@pytest.mark.parametrize("kind", KINDS)
async def test_enqueue(streams: StreamsMaker, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(streams)
    fault = arm(proxy, b, kind, "enqueue", None)
    assert await b.enqueue(Job(id="e1", payload=1)) is True, "the job was stored by this call"
    assert fault.hits == 1
    assert await state(direct, "e1") == JobState.READY
    assert await direct.conn.client.xlen(direct.skeys.stream) == 1
    assert await b.enqueue(Job(id="e1", payload=1)) is False, "a new call sees it stored"


@pytest.mark.parametrize("kind", KINDS)
async def test_enqueue_many(streams: StreamsMaker, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(streams)
    await b.enqueue(Job(id="old", payload=0))
    fault = arm(proxy, b, kind, "enqueue", None)
    out = await b.enqueue_many([Job(id="m1", payload=1), Job(id="old", payload=0), Job(id="m2", payload=2)])
    assert out == [True, False, True]
    assert fault.hits == 1
    assert await direct.conn.client.xlen(direct.skeys.stream) == 3
    assert int(await direct.conn.client.hget(direct.skeys.counters, "enqueued")) == 3


@pytest.mark.parametrize("kind", KINDS)
async def test_dequeue(streams: StreamsMaker, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(streams)
    await direct.enqueue_many([Job(id=f"d{i}", payload=i) for i in range(3)])
    fault = arm(proxy, b, kind, "take", "dequeue")
    got = await b.dequeue()
    assert fault.hits == 1
    assert got is not None
    assert got.id == "d0"
    assert len(await pending(direct)) == 1, "one call, one lease"
    assert (await direct.get_jobs(["d1"]))[0].state == JobState.READY  # type: ignore[union-attr]
    await b.ack(got)
    assert await pending(direct) == []


@pytest.mark.parametrize("kind", KINDS)
async def test_dequeue_many(streams: StreamsMaker, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(streams)
    await direct.enqueue_many([Job(id=f"d{i}", payload=i) for i in range(5)])
    fault = arm(proxy, b, kind, "take", "dequeue")
    got = await b.dequeue_many(DequeueOptions(count=3))
    assert fault.hits == 1
    assert [j.id for j in got] == ["d0", "d1", "d2"]
    assert len(await pending(direct)) == 3
    assert await b.ack_many(got) == [True] * 3
    assert [j.id for j in await b.dequeue_many(DequeueOptions(count=5))] == ["d3", "d4"]


@pytest.mark.parametrize("kind", KINDS)
async def test_ack(streams: StreamsMaker, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(streams)
    await b.enqueue(Job(id="a1", payload=1))
    got = await b.dequeue()
    assert got is not None
    fault = arm(proxy, b, kind, "settle", "acks")
    await b.ack(got)  # no JobNotFoundError: this call acked it
    assert fault.hits == 1
    assert await state(direct, "a1") is None
    assert await pending(direct) == []
    assert int(await direct.conn.client.hget(direct.skeys.counters, "acked")) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_ack_many(streams: StreamsMaker, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(streams)
    await b.enqueue_many([Job(id=f"a{i}", payload=i) for i in range(3)])
    got = await b.dequeue_many(DequeueOptions(count=3))
    fault = arm(proxy, b, kind, "settle", "acks")
    assert await b.ack_many([*got, "never-enqueued"]) == [True, True, True, False]
    assert fault.hits == 1
    assert await pending(direct) == []
    assert await direct.get_jobs([j.id for j in got]) == [None, None, None]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("requeue", [False, True])
async def test_nack(streams: StreamsMaker, proxy: FaultProxy, kind: str, requeue: bool) -> None:
    b, direct = await pair(streams)
    await b.enqueue(Job(id="n1", payload=1, max_retries=3))
    got = await b.dequeue()
    assert got is not None
    fault = arm(proxy, b, kind, "settle", "nack")
    await b.nack(got, requeue=requeue)  # no LeaseLostError: this call settled it
    assert fault.hits == 1
    job = (await direct.get_jobs(["n1"]))[0]
    assert job is not None
    assert job.state == (JobState.READY if requeue else JobState.DEAD)
    assert await pending(direct) == []
    assert int(await direct.conn.client.hget(direct.skeys.counters, "nacked")) == 1
    assert await direct.conn.client.xlen(direct.skeys.dead) == (0 if requeue else 1)
    if requeue:
        again = await b.dequeue()
        assert again is not None
        assert again.id == "n1"
        assert again.retry_count == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_move(streams: StreamsMaker, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(streams)
    target = await streams(via_proxy=False, queue="q-dlq")
    await b.enqueue(Job(id="mv", payload=1))
    got = await b.dequeue()
    assert got is not None
    fault = arm(proxy, b, kind, "settle", "move")
    await b.move(got, "q-dlq")
    assert fault.hits == 1
    assert await state(direct, "mv") is None
    assert await state(target, "mv") == JobState.READY
    assert await target.conn.client.xlen(target.skeys.stream) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_extend_lease(streams: StreamsMaker, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(streams)
    await b.enqueue(Job(id="x1", payload=1))
    got = await b.dequeue()
    assert got is not None
    fault = arm(proxy, b, kind, "settle", "extend")
    deadline = await b.extend_lease(got, 120)
    assert fault.hits == 1
    eid = got.lease_token.split("\x1f")[2]  # type: ignore[union-attr]
    stored = await direct.conn.client.zscore(direct.skeys.leases, f"{direct.group}\x1f{eid}")
    assert stored == deadline * 1000, "the deadline returned is the one the server stored"


async def test_two_lost_replies_in_a_row_still_one_effect(streams: StreamsMaker, proxy: FaultProxy) -> None:
    b, direct = await pair(streams)
    await b.enqueue(Job(id="t1", payload=1, max_retries=5))
    got = await b.dequeue()
    assert got is not None
    sha = b.script_set.scripts["settle"].sha
    drop = proxy.drop_reply(script_call(sha, "nack"))
    reset = proxy.reset_after(script_call(sha, "nack"))  # the next one: drop took the first
    await b.nack(got, requeue=True)
    assert (drop.hits, reset.hits) == (1, 1)
    assert await direct.conn.client.xlen(direct.skeys.stream) == 1, "one retry entry, not three"
    again = await b.dequeue()
    assert again is not None
    assert again.retry_count == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_no_retries_left_is_an_unknown_outcome(
    streams: StreamsMaker, proxy: FaultProxy, kind: str
) -> None:
    b, direct = await pair(streams, max_retries=0)
    await b.enqueue(Job(id="u1", payload=1))
    got = await b.dequeue()
    assert got is not None
    arm(proxy, b, kind, "settle", "acks")
    with pytest.raises(OutcomeUnknownError) as info:
        await b.ack(got)
    assert error_code(info.value) == "OUTCOME_UNKNOWN"
    assert is_retryable(info.value)
    assert await state(direct, "u1") is None, "it did take effect: only the reply was lost"
    arm(proxy, b, kind, "enqueue", None)
    with pytest.raises(OutcomeUnknownError):
        await b.enqueue(Job(id="u2", payload=2))
    assert await b.enqueue(Job(id="u2", payload=2)) is False, "retrying by id is safe"

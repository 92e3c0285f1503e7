"""Truthful outcomes on both Redis layouts: a reply lost after the server ran the call
(swallowed, or the connection reset) is retried with the same call id, and the caller gets what
really happened -- checked against the server's state, job by job. With no retries left, the
caller gets OutcomeUnknownError, never a definite-sounding error."""

from __future__ import annotations

import time
from typing import Any

import anyio
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

from .conftest import Maker, pair
from .layouts import Layout, ListsLayoutHooks
from .proxy import Fault, FaultProxy

pytestmark = pytest.mark.anyio

KINDS = ["drop", "reset"]
LISTS_ONLY = pytest.mark.parametrize("layout", ["redis-lists"], indirect=True)


def arm(proxy: FaultProxy, layout: Layout, backend: Any, kind: str, op: str) -> Fault:
    match = layout.call(backend, op)
    return proxy.drop_reply(match) if kind == "drop" else proxy.reset_after(match)


async def state(direct: Any, job_id: str) -> JobState | None:
    job = (await direct.get_jobs([job_id]))[0]
    return None if job is None else job.state


@pytest.mark.parametrize("kind", KINDS)
async def test_enqueue(backends: Maker, layout: Layout, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(backends)
    await b.enqueue(Job(id="e0", payload=0))  # a new queue's first store sweeps (the full script)
    fault = arm(proxy, layout, b, kind, "enqueue_one")
    assert await b.enqueue(Job(id="e1", payload=1)) is True, "the job was stored by this call"
    assert fault.hits == 1
    assert await state(direct, "e1") == JobState.READY
    assert await layout.stored(direct) == 2
    assert await b.enqueue(Job(id="e1", payload=1)) is False, "a new call sees it stored"


@pytest.mark.parametrize("kind", KINDS)
async def test_enqueue_sent_on_to_the_full_script(
    backends: Maker, layout: Layout, proxy: FaultProxy, kind: str
) -> None:
    b, direct = await pair(backends)
    await b.enqueue(Job(id="due", payload=0, available_at=time.time() + 0.2))
    await anyio.sleep(0.4)  # due now: the lean script declines, the full one sweeps and stores
    fault = arm(proxy, layout, b, kind, "enqueue")
    assert await b.enqueue(Job(id="e2", payload=2)) is True, "the job was stored by this call"
    assert fault.hits == 1
    assert await state(direct, "e2") == JobState.READY
    assert await state(direct, "due") == JobState.READY
    assert await layout.stored(direct) == 2
    assert await b.enqueue(Job(id="e2", payload=2)) is False, "a new call sees it stored"


@pytest.mark.parametrize("kind", KINDS)
async def test_enqueue_many(backends: Maker, layout: Layout, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(backends)
    await b.enqueue(Job(id="old", payload=0))
    fault = arm(proxy, layout, b, kind, "enqueue")
    out = await b.enqueue_many([Job(id="m1", payload=1), Job(id="old", payload=0), Job(id="m2", payload=2)])
    assert out == [True, False, True]
    assert fault.hits == 1
    assert await layout.stored(direct) == 3
    if (counters := await layout.counters(direct)) is not None:
        assert counters["enqueued"] == 3


@pytest.mark.parametrize("kind", KINDS)
async def test_dequeue(backends: Maker, layout: Layout, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(backends)
    await direct.enqueue_many([Job(id=f"d{i}", payload=i) for i in range(3)])
    fault = arm(proxy, layout, b, kind, "dequeue")
    got = await b.dequeue()
    assert fault.hits == 1
    assert got is not None
    assert got.id == "d0"
    assert await layout.in_flight(direct) == ["d0"], "one call, one lease"
    assert await state(direct, "d1") == JobState.READY
    await b.ack(got)
    assert await layout.in_flight(direct) == []


@pytest.mark.parametrize("kind", KINDS)
async def test_dequeue_many(backends: Maker, layout: Layout, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(backends)
    await direct.enqueue_many([Job(id=f"d{i}", payload=i) for i in range(5)])
    fault = arm(proxy, layout, b, kind, "dequeue")
    got = await b.dequeue_many(DequeueOptions(count=3))
    assert fault.hits == 1
    assert [j.id for j in got] == ["d0", "d1", "d2"]
    assert sorted(await layout.in_flight(direct)) == ["d0", "d1", "d2"]
    assert await b.ack_many(got) == [True] * 3
    assert [j.id for j in await b.dequeue_many(DequeueOptions(count=5))] == ["d3", "d4"]


@pytest.mark.parametrize("kind", KINDS)
async def test_ack(backends: Maker, layout: Layout, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(backends)
    await b.enqueue(Job(id="a1", payload=1))
    got = await b.dequeue()
    assert got is not None
    fault = arm(proxy, layout, b, kind, "ack")
    await b.ack(got)  # no JobNotFoundError: this call acked it
    assert fault.hits == 1
    assert await state(direct, "a1") is None
    assert await layout.in_flight(direct) == []
    if (counters := await layout.counters(direct)) is not None:
        assert counters["acked"] == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_ack_many(backends: Maker, layout: Layout, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(backends)
    await b.enqueue_many([Job(id=f"a{i}", payload=i) for i in range(3)])
    got = await b.dequeue_many(DequeueOptions(count=3))
    fault = arm(proxy, layout, b, kind, "ack")
    assert await b.ack_many([*got, "never-enqueued"]) == [True, True, True, False]
    assert fault.hits == 1
    assert await layout.in_flight(direct) == []
    assert await direct.get_jobs([j.id for j in got]) == [None, None, None]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("requeue", [False, True])
async def test_nack(backends: Maker, layout: Layout, proxy: FaultProxy, kind: str, requeue: bool) -> None:
    b, direct = await pair(backends)
    await b.enqueue(Job(id="n1", payload=1, max_retries=3))
    got = await b.dequeue()
    assert got is not None
    fault = arm(proxy, layout, b, kind, "nack")
    await b.nack(got, requeue=requeue)  # no LeaseLostError: this call settled it
    assert fault.hits == 1
    job = (await direct.get_jobs(["n1"]))[0]
    assert job is not None
    assert job.state == (JobState.READY if requeue else JobState.DEAD)
    assert job.retry_count == (1 if requeue else 0), "one nack, one retry counted"
    assert await layout.in_flight(direct) == []
    assert await layout.dead(direct) == (0 if requeue else 1)
    if (counters := await layout.counters(direct)) is not None:
        assert counters["nacked"] == 1
    if requeue:
        again = await b.dequeue()
        assert again is not None
        assert again.id == "n1"
        assert again.retry_count == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_move(backends: Maker, layout: Layout, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(backends)
    target = await backends(via_proxy=False, queue="q-dlq")
    await b.enqueue(Job(id="mv", payload=1))
    got = await b.dequeue()
    assert got is not None
    fault = arm(proxy, layout, b, kind, "move")
    await b.move(got, "q-dlq")
    assert fault.hits == 1
    assert await state(direct, "mv") is None
    assert await state(target, "mv") == JobState.READY
    assert await layout.stored(target) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_extend_lease(backends: Maker, layout: Layout, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(backends)
    await b.enqueue(Job(id="x1", payload=1))
    got = await b.dequeue()
    assert got is not None
    fault = arm(proxy, layout, b, kind, "extend")
    deadline = await b.extend_lease(got, 120)
    assert fault.hits == 1
    assert await layout.lease_deadline(direct, got) == deadline, "the deadline returned is the one stored"


@pytest.mark.parametrize("kind", KINDS)
async def test_extend_lease_with_no_retries_left_is_an_unknown_outcome(
    backends: Maker, layout: Layout, proxy: FaultProxy, kind: str
) -> None:
    b, direct = await pair(backends, max_retries=0)
    await b.enqueue(Job(id="x2", payload=1))
    got = await b.dequeue()
    assert got is not None
    before = await layout.lease_deadline(direct, got)
    assert before is not None
    arm(proxy, layout, b, kind, "extend")
    with pytest.raises(OutcomeUnknownError) as info:
        await b.extend_lease(got, 120)
    assert error_code(info.value) == "OUTCOME_UNKNOWN"
    after = await layout.lease_deadline(direct, got)
    assert after is not None
    assert after > before + 60, "it did take effect: only the reply was lost"


async def test_a_job_missing_here_but_in_the_target_from_elsewhere_is_not_found(backends: Maker) -> None:
    b = await backends(via_proxy=False)
    target = await backends(via_proxy=False, queue="q-other")
    await target.enqueue(Job(id="x1", payload=1))  # stored there directly: not moved from b
    with pytest.raises(JobNotFoundError) as info:
        await b.move("x1", "q-other")
    assert error_code(info.value) == "JOB_NOT_FOUND"
    assert await state(target, "x1") == JobState.READY


async def test_two_lost_replies_in_a_row_still_one_effect(
    backends: Maker, layout: Layout, proxy: FaultProxy
) -> None:
    b, direct = await pair(backends)
    await b.enqueue(Job(id="t1", payload=1, max_retries=5))
    got = await b.dequeue()
    assert got is not None
    drop = proxy.drop_reply(layout.call(b, "nack"))
    reset = proxy.reset_after(layout.call(b, "nack"))  # the next one: drop took the first
    await b.nack(got, requeue=True)
    assert (drop.hits, reset.hits) == (1, 1)
    assert await layout.stored(direct) == 1, "one retry entry, not three"
    again = await b.dequeue()
    assert again is not None
    assert again.retry_count == 1, "one nack, not three"
    assert await b.dequeue() is None, "one ready entry, not three"


@pytest.mark.parametrize("kind", KINDS)
async def test_no_retries_left_is_an_unknown_outcome(
    backends: Maker, layout: Layout, proxy: FaultProxy, kind: str
) -> None:
    b, direct = await pair(backends, max_retries=0)
    await b.enqueue(Job(id="u1", payload=1))
    got = await b.dequeue()
    assert got is not None
    arm(proxy, layout, b, kind, "ack")
    with pytest.raises(OutcomeUnknownError) as info:
        await b.ack(got)
    assert error_code(info.value) == "OUTCOME_UNKNOWN"
    assert is_retryable(info.value)
    assert await state(direct, "u1") is None, "it did take effect: only the reply was lost"
    arm(proxy, layout, b, kind, "enqueue_one")
    with pytest.raises(OutcomeUnknownError):
        await b.enqueue(Job(id="u2", payload=2))
    assert await b.enqueue(Job(id="u2", payload=2)) is False, "retrying by id is safe"


@LISTS_ONLY
async def test_an_unreadable_call_record_is_an_unknown_outcome(backends: Maker) -> None:
    b = await backends(via_proxy=False)
    await b.enqueue(Job(id="g1", payload=1))
    got = await b.dequeue()
    assert got is not None
    calls = ListsLayoutHooks.key(b, "calls")
    await b.conn.client.hset(calls, "cid-garbage", b"\xff not json")
    sha = b.script_set.scripts["ack"].sha
    with pytest.raises(ResponseError) as info:
        await b.conn.client.evalsha(
            sha, len(b.layout.state_block), *b.layout.state_block, "cid-garbage", "g1", ""
        )
    assert "QSUNKNOWN" in str(info.value)
    assert await state(b, "g1") == JobState.IN_FLIGHT, "nothing was done on a guess"

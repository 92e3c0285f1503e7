"""A cancelled redis-streams dequeue costs no job an attempt: what its take leased is handed
back (shielded from the cancellation), and a take that reaches the server after the hand-back
leases nothing. The proxy holds the take's request or reply so the cancellation lands exactly
where it must."""

from __future__ import annotations

import random
from collections import Counter

import anyio
import pytest

from queuestore import DequeueOptions, Job, JobState

from .conftest import StreamsMaker
from .proxy import FaultProxy, script_call
from .test_streams_outcomes import pair, pending

pytestmark = pytest.mark.anyio


async def test_cancelled_after_the_server_leased_the_job_goes_back_unattempted(
    streams: StreamsMaker, proxy: FaultProxy
) -> None:
    b, direct = await pair(streams, visibility_timeout=0.5)
    await direct.enqueue(Job(id="c1", payload=1, max_retries=0))
    held = proxy.delay_reply(script_call(b.script_set.scripts["take"].sha, "dequeue"), 0.6)
    with anyio.move_on_after(0.1) as scope:
        await b.dequeue()
    assert scope.cancelled_caught
    assert held.hits == 1
    assert await pending(direct) == [], "nobody holds it"
    assert (await direct.get_jobs(["c1"]))[0].state == JobState.READY  # type: ignore[union-attr]
    await anyio.sleep(0.7)  # past the lease it would have had
    got = await direct.dequeue()
    assert got is not None
    assert (got.id, got.attempt, got.retry_count) == ("c1", 1, 0), "the cancelled call was no attempt"
    assert await direct.conn.client.xlen(direct.skeys.dead) == 0
    await direct.ack(got)


async def test_cancelled_before_the_take_reached_the_server_leases_nothing(
    streams: StreamsMaker, proxy: FaultProxy
) -> None:
    b, direct = await pair(streams, visibility_timeout=0.5)
    await direct.enqueue(Job(id="c2", payload=1, max_retries=0))
    late = proxy.delay_request(script_call(b.script_set.scripts["take"].sha, "dequeue"), 0.4)
    with anyio.move_on_after(0.1) as scope:
        await b.dequeue()
    assert scope.cancelled_caught
    await anyio.sleep(0.6)  # the held take has reached the server by now, after the hand-back
    assert late.hits == 1
    assert proxy.requests > 0
    assert await pending(direct) == [], "the late take leased nothing"
    got = await direct.dequeue()
    assert got is not None
    assert (got.id, got.attempt) == ("c2", 1)
    await direct.ack(got)


async def test_randomly_cancelled_dequeues_lose_no_job_and_count_no_attempt(
    streams: StreamsMaker, proxy: FaultProxy
) -> None:
    b, direct = await pair(streams, visibility_timeout=0.4)
    n = 40
    await direct.enqueue_many([Job(id=f"j{i}", payload=i, max_retries=0) for i in range(n)])
    # every take's reply comes 15 ms late, so a 0-30 ms deadline lands before or after it
    proxy.delay_reply(script_call(b.script_set.scripts["take"].sha, "dequeue"), 0.015, times=10_000)
    rng = random.Random(7)
    delivered: list[str] = []
    cancelled = 0
    for _ in range(100):
        with anyio.move_on_after(rng.uniform(0, 0.03)) as scope:
            got = await b.dequeue(DequeueOptions(timeout=0))
        if scope.cancelled_caught:
            cancelled += 1
            continue
        if got is not None:
            delivered.append(got.id)
            await b.ack(got)
    assert cancelled > 0
    await anyio.sleep(0.5)  # past every lease a cancelled call could have left
    while batch := await direct.dequeue_many(DequeueOptions(count=100)):
        assert {j.attempt for j in batch} == {1}, "a cancelled dequeue counted an attempt"
        assert await direct.ack_many(batch) == [True] * len(batch)
        delivered += [j.id for j in batch]
    counts = Counter(delivered)
    assert sorted(counts) == sorted(f"j{i}" for i in range(n)), "a job was lost"
    assert set(counts.values()) == {1}, "a job was delivered twice"
    assert await direct.conn.client.xlen(direct.skeys.dead) == 0, "nothing was dead-lettered"


async def test_a_cancelled_coalesced_dequeue_hands_back_its_share(
    streams: StreamsMaker, proxy: FaultProxy
) -> None:
    b, direct = await pair(streams, visibility_timeout=0.5, coalesce=True)
    await direct.enqueue_many([Job(id=f"k{i}", payload=i, max_retries=0) for i in range(2)])
    held = proxy.delay_reply(script_call(b.script_set.scripts["take"].sha, "dequeue"), 0.4)
    kept: list[Job | None] = []

    async def patient() -> None:
        kept.append(await b.dequeue())

    async with anyio.create_task_group() as tg:
        tg.start_soon(patient)
        with anyio.move_on_after(0.1) as scope:
            await b.dequeue()
        assert scope.cancelled_caught
    assert held.hits == 1, "both calls shared one take"
    assert len(kept) == 1
    assert kept[0] is not None
    assert len(await pending(direct)) == 1, "only the patient caller holds a job"
    other = "k1" if kept[0].id == "k0" else "k0"
    got = await direct.dequeue()
    assert got is not None
    assert (got.id, got.attempt) == (other, 1)
    await direct.ack(got)
    await b.ack(kept[0])

"""A cancelled dequeue costs no job an attempt, on both Redis layouts: what its lease script
leased is handed back (shielded from the cancellation) -- redis-lists to the head of its ready
list, redis-streams to the tail of the stream -- and a lease script that reaches the server
after the hand-back leases nothing. The proxy holds the script's request or reply so the
cancellation lands exactly where it must. Also: the caller's timeout bounds the whole call, and
a bare timeout is refused with the fix named."""

from __future__ import annotations

import random
from collections import Counter

import anyio
import pytest

from queuestore import BackendError, DequeueOptions, Job, JobState, OperationTimeoutError, OutcomeUnknownError
from queuestore.backends._redis.scripts import MAX_JOBS_PER_SCRIPT

from .conftest import Maker, pair
from .layouts import Layout
from .proxy import FaultProxy

pytestmark = pytest.mark.anyio

LISTS_ONLY = pytest.mark.parametrize("layout", ["redis-lists"], indirect=True)


async def test_cancelled_after_the_server_leased_the_job_goes_back_unattempted(
    backends: Maker, layout: Layout, proxy: FaultProxy
) -> None:
    b, direct = await pair(backends, visibility_timeout=0.5)
    jobs = [Job(id="c1", payload=1, max_retries=0)]
    if layout.type == "redis-lists":  # a second job shows that c1 went back to the head
        jobs.append(Job(id="c2", payload=2))
    await direct.enqueue_many(jobs)
    held = proxy.delay_reply(layout.call(b, "dequeue"), 0.6)
    with anyio.move_on_after(0.1) as scope:
        await b.dequeue()
    assert scope.cancelled_caught
    assert held.hits == 1
    assert await layout.in_flight(direct) == [], "nobody holds it"
    assert (await direct.get_jobs(["c1"]))[0].state == JobState.READY
    await anyio.sleep(0.7)  # past the lease it would have had
    got = await direct.dequeue()
    assert got is not None
    assert (got.id, got.attempt, got.retry_count) == ("c1", 1, 0), "handed back, no attempt counted"
    assert await layout.dead(direct) == 0
    await direct.ack(got)


@LISTS_ONLY
async def test_cancelled_dequeue_many_hands_back_every_job_in_order(
    backends: Maker, layout: Layout, proxy: FaultProxy
) -> None:
    b, direct = await pair(backends, visibility_timeout=0.5)
    await direct.enqueue_many([Job(id=f"m{i}", payload=i) for i in range(5)])
    proxy.delay_reply(layout.call(b, "dequeue"), 0.6)
    with anyio.move_on_after(0.1):
        await b.dequeue_many(DequeueOptions(count=3))
    assert await layout.in_flight(direct) == []
    got = await direct.dequeue_many(DequeueOptions(count=5))
    assert [(j.id, j.attempt) for j in got] == [(f"m{i}", 1) for i in range(5)]


async def test_cancelled_before_the_lease_reached_the_server_leases_nothing(
    backends: Maker, layout: Layout, proxy: FaultProxy
) -> None:
    b, direct = await pair(backends, visibility_timeout=0.5)
    await direct.enqueue(Job(id="c2", payload=1, max_retries=0))
    late = proxy.delay_request(layout.call(b, "dequeue"), 0.4)
    with anyio.move_on_after(0.1) as scope:
        await b.dequeue()
    assert scope.cancelled_caught
    await anyio.sleep(0.6)  # the held lease script has reached the server by now, after the hand-back
    assert late.hits == 1
    assert proxy.requests > 0
    assert await layout.in_flight(direct) == [], "the late lease script leased nothing"
    got = await direct.dequeue()
    assert got is not None
    assert (got.id, got.attempt) == ("c2", 1)
    await direct.ack(got)


async def test_randomly_cancelled_dequeues_lose_no_job_and_count_no_attempt(
    backends: Maker, layout: Layout, proxy: FaultProxy
) -> None:
    b, direct = await pair(backends, visibility_timeout=0.4)
    n = 40
    await direct.enqueue_many([Job(id=f"j{i}", payload=i, max_retries=0) for i in range(n)])
    # every lease script's reply comes 15 ms late, so a 0-30 ms deadline lands before or after it
    proxy.delay_reply(layout.call(b, "dequeue"), 0.015, times=10_000)
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
    assert await layout.dead(direct) == 0, "nothing was dead-lettered"


async def test_the_timeout_bounds_the_whole_call(backends: Maker, layout: Layout, proxy: FaultProxy) -> None:
    # the lease script's reply is swallowed and the read timeout is long: the call deadline
    # (timeout + half the call_margin) cuts it, and the other half hands back what it leased
    b, direct = await pair(backends, read_timeout=30.0, call_margin=1.0)
    await direct.enqueue(Job(id="t1", payload=1))
    held = proxy.drop_reply(layout.call(b, "dequeue"))
    with pytest.raises(OperationTimeoutError, match=r"no answer within 0\.6s"):
        await b.dequeue(DequeueOptions(timeout=0.1))
    assert held.hits == 1
    assert await layout.in_flight(direct) == [], "what the cut call leased was handed back"
    got = await direct.dequeue()
    assert got is not None
    assert (got.id, got.attempt) == ("t1", 1)


async def test_a_dequeue_many_cancelled_in_a_later_take_hands_back_the_earlier_takes_jobs(
    backends: Maker, layout: Layout, proxy: FaultProxy
) -> None:
    # past 1,000 jobs a dequeue_many takes in several script calls: the second one's reply is
    # held, the call is cancelled there, and the 1,000 jobs the first take leased go back too
    b, direct = await pair(backends, visibility_timeout=30.0, read_timeout=5.0, write_timeout=5.0)
    n = MAX_JOBS_PER_SCRIPT + 200
    ids = [f"k{i:05}" for i in range(n)]
    await direct.enqueue_many([Job(id=i, payload=i) for i in ids])
    held = proxy.delay_reply(layout.call(b, "dequeue"), 2.0, skip=1)
    with anyio.move_on_after(0.5) as scope:
        await b.dequeue_many(DequeueOptions(count=n))
    assert scope.cancelled_caught
    assert held.hits == 1, "the second take was the one cut"
    assert await layout.in_flight(direct) == [], "every job of both takes was handed back"
    got = await direct.dequeue_many(DequeueOptions(count=n))
    assert sorted(j.id for j in got) == ids
    assert {j.attempt for j in got} == {1}, "no attempt counted"
    assert await direct.ack_many(got) == [True] * n


async def test_a_dequeue_many_whose_later_take_lost_its_reply_hands_back_every_job(
    backends: Maker, layout: Layout, proxy: FaultProxy
) -> None:
    # no retry allowed: the second take's lost reply ends the call with OutcomeUnknownError,
    # and neither take's jobs stay leased to a caller that never got them
    b, direct = await pair(backends, visibility_timeout=30.0, max_retries=0)
    n = MAX_JOBS_PER_SCRIPT + 200
    ids = [f"u{i:05}" for i in range(n)]
    await direct.enqueue_many([Job(id=i, payload=i) for i in ids])
    cut = proxy.drop_reply(layout.call(b, "dequeue"), skip=1)
    with pytest.raises(OutcomeUnknownError):
        await b.dequeue_many(DequeueOptions(count=n))
    assert cut.hits == 1
    assert await layout.in_flight(direct) == [], "both takes' jobs were handed back"
    got = await direct.dequeue_many(DequeueOptions(count=n))
    assert sorted(j.id for j in got) == ids
    assert {j.attempt for j in got} == {1}, "no attempt counted"
    assert await direct.ack_many(got) == [True] * n


@LISTS_ONLY
async def test_a_dequeue_many_whose_later_script_failed_hands_back_every_job(
    backends: Maker, layout: Layout, proxy: FaultProxy
) -> None:
    # the second lease script ran but answered an error (as one failing after some writes):
    # the call raises, and what both scripts leased goes back
    b, direct = await pair(backends, visibility_timeout=30.0)
    n = MAX_JOBS_PER_SCRIPT + 200
    ids = [f"e{i:05}" for i in range(n)]
    await direct.enqueue_many([Job(id=i, payload=i) for i in ids])
    failed = proxy.error_reply(layout.call(b, "dequeue"), skip=1)
    with pytest.raises(BackendError, match="injected by the fault proxy"):
        await b.dequeue_many(DequeueOptions(count=n))
    assert failed.hits == 1
    assert await layout.in_flight(direct) == [], "both scripts' jobs were handed back"
    got = await direct.dequeue_many(DequeueOptions(count=n))
    assert [j.id for j in got] == ids, "back at the head, in order"
    assert {j.attempt for j in got} == {1}, "no attempt counted"
    assert await direct.ack_many(got) == [True] * n


async def test_a_big_batch_has_the_server_time_for_its_jobs(
    backends: Maker, layout: Layout, proxy: FaultProxy
) -> None:
    # the take's reply comes 1.5 s late, past half the call_margin (0.5 s): a batch of 10,000
    # has 10,000 x TAKE_TIME_PER_JOB more (2 s) and gets its jobs; one of 2 is cut, and the
    # other half of the margin hands back what it leased
    b, direct = await pair(backends, read_timeout=30.0, call_margin=1.0)
    await direct.enqueue_many([Job(id=f"m{i}", payload=i) for i in range(3)])
    big = proxy.delay_reply(layout.call(b, "dequeue"), 1.5)
    got = await b.dequeue_many(DequeueOptions(count=10_000))
    assert big.hits == 1
    assert sorted(j.id for j in got) == ["m0", "m1", "m2"]
    assert await b.ack_many(got) == [True] * 3
    await direct.enqueue_many([Job(id=f"s{i}", payload=i) for i in range(2)])
    small = proxy.delay_reply(layout.call(b, "dequeue"), 1.5)
    cut = r"no answer within 0\.5004s \(timeout 0s \+ 0\.0004s for 2 jobs \+ half the call_margin\)"
    with pytest.raises(OperationTimeoutError, match=cut):
        await b.dequeue_many(DequeueOptions(count=2))
    assert small.hits == 1
    assert await layout.in_flight(direct) == [], "what the cut call leased was handed back"
    again = await direct.dequeue_many(DequeueOptions(count=2))
    assert sorted((j.id, j.attempt) for j in again) == [("s0", 1), ("s1", 1)]


@pytest.mark.parametrize("op", ["dequeue", "dequeue_many"])
async def test_a_bare_timeout_is_refused_with_the_fix_named(backends: Maker, op: str) -> None:
    b = await backends(via_proxy=False)
    await b.enqueue(Job(id="b1", payload=1))
    with pytest.raises(TypeError, match=rf"{op}\(DequeueOptions\(timeout=1.0\)\)"):
        await getattr(b, op)(1.0)
    assert await b.length() == 1, "nothing was leased"


async def test_a_cancelled_coalesced_dequeue_hands_back_its_share(
    backends: Maker, layout: Layout, proxy: FaultProxy
) -> None:
    b, direct = await pair(backends, visibility_timeout=0.5, coalesce=True)
    await direct.enqueue_many([Job(id=f"k{i}", payload=i, max_retries=0) for i in range(2)])
    held = proxy.delay_reply(layout.call(b, "dequeue"), 0.4)
    kept: list[Job | None] = []

    async def patient() -> None:
        kept.append(await b.dequeue())

    async with anyio.create_task_group() as tg:
        tg.start_soon(patient)
        with anyio.move_on_after(0.1) as scope:
            await b.dequeue()
        assert scope.cancelled_caught
    assert held.hits == 1, "both calls shared one lease script"
    assert len(kept) == 1
    assert kept[0] is not None
    assert len(await layout.in_flight(direct)) == 1, "only the patient caller holds a job"
    other = "k1" if kept[0].id == "k0" else "k0"
    got = await direct.dequeue()
    assert got is not None
    assert (got.id, got.attempt) == (other, 1)
    await direct.ack(got)
    await b.ack(kept[0])


async def test_a_coalesced_dequeue_cancelled_after_its_share_came_hands_it_back(
    backends: Maker, layout: Layout
) -> None:
    b, direct = await pair(backends, visibility_timeout=0.5, coalesce=True)
    await direct.enqueue(Job(id="s1", payload=1, max_retries=0))
    with anyio.CancelScope() as scope:

        async def cancel_soon() -> None:
            scope.cancel()

        # the shared call runs at the next loop tick; the caller is cancelled at that tick too
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_soon)
            await b.dequeue()
    await anyio.sleep(0.3)  # the shared call (not cancelled with its caller) has finished by now
    assert await layout.in_flight(direct) == []
    got = await direct.dequeue()
    assert got is not None
    assert (got.id, got.attempt) == ("s1", 1)

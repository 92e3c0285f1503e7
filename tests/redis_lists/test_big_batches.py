"""The largest legal batches (``batch_size`` at its maximum, a page of ``iter`` at its maximum)
go through every batch path job by job: a script never hands a command more values than Lua
unpacks at once (about 8000), and every job is reported exactly as it went."""

from __future__ import annotations

import pytest

from queuestore import DequeueOptions, IterOptions, Job, JobState
from queuestore.backends._redis.scripts import MAX_JOBS_PER_SCRIPT
from queuestore.backends.redis_lists.factory import MAX_BATCH_SIZE
from tests.big_batches import N, check_the_other_states, fill_and_list

from .conftest import Maker

pytestmark = pytest.mark.anyio


def test_the_batches_here_are_the_largest_batch_size() -> None:
    assert N == MAX_BATCH_SIZE


async def test_the_largest_batches_report_every_job(lists: Maker) -> None:
    b = await lists(batch_size=N)
    ids = await fill_and_list(b)
    assert [j.id async for j in b.iter(IterOptions(count=N, start_id=ids[5]))] == ids[5:]

    got = await b.dequeue_many(DequeueOptions(count=N))
    assert [j.id for j in got] == ids
    assert len({j.lease_token for j in got}) == N
    leased = {j.id async for j in b.iter(IterOptions(count=N, states=(JobState.IN_FLIGHT,)))}
    assert leased == set(ids)
    # one script of 10,000 ids: 9000 acked (more than one command takes), 1000 unknown
    mixed: list[Job | str] = [*got[:9000], *(f"none{i}" for i in range(1000))]
    assert await b.ack_many(mixed) == [True] * 9000 + [False] * 1000
    assert await b.ack_many([j.id for j in got]) == [False] * 9000 + [True] * 1000
    assert await b.get_jobs(ids) == [None] * N
    assert await b.length() == 0
    assert (await b.stats()).in_flight == 0


async def test_the_largest_batches_of_the_other_states(lists: Maker) -> None:
    b = await lists(batch_size=N)
    await check_the_other_states(b)


async def test_a_dequeue_many_past_1000_jobs_takes_1000_per_script_call(lists: Maker) -> None:
    b = await lists()
    n = 2 * MAX_JOBS_PER_SCRIPT + 500
    ids = [f"c{i:05}" for i in range(n)]
    assert await b.enqueue_many([Job(id=i, payload=i) for i in ids]) == [True] * n
    before = b.script_set.calls["dequeue"]
    got = await b.dequeue_many(DequeueOptions(count=n + 10))  # asks for more than there is
    assert b.script_set.calls["dequeue"] - before == 3  # 1,000, 1,000, then 510 asked, 500 got
    assert [j.id for j in got] == ids
    assert len({j.lease_token for j in got}) == n
    assert await b.ack_many(got) == [True] * n
    assert await b.length() == 0
    assert (await b.stats()).in_flight == 0

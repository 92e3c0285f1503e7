"""Batches past what Lua unpacks at once (about 8000 values) go through every batch path job
by job: ``enqueue_many``, ``dequeue_many`` (as transactions and through the take script),
``ack_many``, ``get_jobs``, a page of ``iter``, ``import_jobs``, ``redrive``, ``purge`` and the
migration steps each report every job exactly as it went. The calls of a batch past 1,000 jobs
are split so that no script call or take holds the server for long."""

from __future__ import annotations

import pytest

from queuestore import DequeueOptions, IterOptions, Job, JobState
from queuestore.backends._redis.scripts import MAX_JOBS_PER_SCRIPT
from tests.big_batches import N, check_the_other_states, fill_and_list

from .conftest import Maker

pytestmark = pytest.mark.anyio


async def test_the_largest_batches_report_every_job(make: Maker) -> None:
    b = await make(groups=["audit"])
    ids = await fill_and_list(b)

    got = await b.dequeue_many(DequeueOptions(count=N))  # ten transactions of 1,000
    assert [j.id for j in got] == ids
    assert len({j.lease_token for j in got}) == N
    leased = [j.id async for j in b.iter(IterOptions(count=N, states=(JobState.IN_FLIGHT,)))]
    assert sorted(leased) == ids
    mixed: list[Job | str] = [*got[:9000], *(f"none{i}" for i in range(1000))]
    assert await b.ack_many(mixed) == [True] * 9000 + [False] * 1000
    assert await b.ack_many([j.id for j in got]) == [False] * 9000 + [True] * 1000
    # the other group reads them all too, through the take script (a lease past claim_min_idle)
    other = await b.dequeue_many(DequeueOptions(count=N, consumer_group="audit", visibility_timeout=3600))
    assert [j.id for j in other] == ids
    assert await b.ack_many(other) == [True] * N
    assert await b.get_jobs(ids) == [None] * N
    assert await b.length() == 0


async def test_the_largest_batches_of_the_other_states(make: Maker) -> None:
    b = await make()
    await check_the_other_states(b)


async def test_a_batch_past_1000_jobs_goes_1000_per_call(make: Maker) -> None:
    b = await make()
    n = 2 * MAX_JOBS_PER_SCRIPT + 500
    ids = [f"c{i:05}" for i in range(n)]
    calls = b.script_set.calls
    before = dict(calls)
    assert await b.enqueue_many([Job(id=i, payload=i) for i in ids]) == [True] * n
    got = await b.dequeue_many(DequeueOptions(count=n + 10))  # asks for more than there is
    assert [j.id for j in got] == ids
    assert len({j.lease_token for j in got}) == n
    assert await b.ack_many(got) == [True] * n
    # three storing calls; three takes (a transaction each, counted by its lease script call),
    # the third asking for 510 and getting the 500 left; three acks
    made = {k: calls[k] - before.get(k, 0) for k in ("enqueue", "lease", "ack")}
    assert made == {"enqueue": 3, "lease": 3, "ack": 3}
    assert await b.length() == 0
    st = await b.stats()
    assert (st.in_flight, st.dead) == (0, 0)
    before = calls["enqueue"]
    assert await b.import_jobs([Job(id=i, state=JobState.DEAD) for i in ids]) == [True] * n
    assert calls["enqueue"] - before == 3
    assert (await b.stats()).dead == n

"""Batches past what Lua unpacks at once (about 8000 values) go through every batch path job
by job: ``enqueue_many``, ``dequeue_many`` (as one transaction and through the take script),
``ack_many``, ``get_jobs``, a page of ``iter``, ``import_jobs``, ``redrive``, ``purge`` and the
migration steps each report every job exactly as it went."""

from __future__ import annotations

import pytest

from queuestore import DequeueOptions, IterOptions, Job, JobState
from tests.big_batches import N, check_the_other_states, fill_and_list

from .conftest import Maker

pytestmark = pytest.mark.anyio


async def test_the_largest_batches_report_every_job(make: Maker) -> None:
    b = await make(groups=["audit"])
    ids = await fill_and_list(b)

    got = await b.dequeue_many(DequeueOptions(count=N))  # one transaction
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

"""Batches past what Lua unpacks at once (about 8000 values) go through every batch path job
by job: ``enqueue_many``, ``dequeue_many`` (as one transaction and through the take script),
``ack_many``, ``get_jobs``, a page of ``iter``, ``import_jobs``, ``redrive``, ``purge`` and the
migration steps each report every job exactly as it went."""

from __future__ import annotations

import time

import pytest

from queuestore import ALL, DequeueOptions, IterOptions, Job, JobState

from .conftest import Maker

pytestmark = pytest.mark.anyio
N = 10_000  # the largest page of iter, and past what one Lua unpack takes


def ids_of(stem: str) -> list[str]:
    return [f"{stem}{i:05}" for i in range(N)]


async def test_the_largest_batches_report_every_job(make: Maker) -> None:
    b = await make(groups=["audit"])
    ids = ids_of("r")
    assert await b.enqueue_many([Job(id=i, payload=i) for i in ids]) == [True] * N
    assert await b.enqueue_many([Job(id=i) for i in ids]) == [False] * N
    found = await b.get_jobs(ids)
    assert [(j.id, j.state, j.payload) for j in found if j] == [(i, JobState.READY, i) for i in ids]
    assert [j.id async for j in b.iter(IterOptions(count=N))] == ids
    assert [j.id async for j in b.iter(IterOptions(count=N, reverse=True))] == ids[::-1]

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
    now = time.time()
    later = [Job(id=i, available_at=now + 600, expires_at=now + 900, idempotency_key=i) for i in ids_of("d")]
    assert await b.enqueue_many(later) == [True] * N
    delayed = [j.id async for j in b.iter(IterOptions(count=N, states=(JobState.DELAYED,)))]
    assert sorted(delayed) == ids_of("d")
    assert await b.purge(JobState.DELAYED, ids_of("d")) == N

    assert await b.import_jobs([Job(id=i, state=JobState.DEAD) for i in ids_of("x")]) == [True] * N
    assert [j.id async for j in b.iter(IterOptions(count=N, states=(JobState.DEAD,)))] == ids_of("x")
    assert await b.redrive(ids_of("x")) == N
    assert [j.id async for j in b.iter(IterOptions(count=N))] == ids_of("x")
    assert await b.purge(JobState.READY, ALL) == N

    assert await b.enqueue_many([Job(id=i) for i in ids_of("m")]) == [True] * N
    held = await b.migration_hold("big", JobState.READY, N)
    assert [j.id for j in held] == ids_of("m")
    assert [j.id for j in await b.migration_held("big", N)] == ids_of("m")
    assert await b.migration_release("big", ids_of("m")) == N
    assert await b.get_jobs(ids_of("m")) == [None] * N
    assert await b.length() == 0
    st = await b.stats()
    assert (st.delayed, st.in_flight, st.dead) == (0, 0, 0)

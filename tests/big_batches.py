"""What both Redis layouts' big-batch tests check the same way: the states past ready (delayed,
dead, held by a migration) at the largest batch and page, every job reported as it went."""

from __future__ import annotations

import time
from typing import Any

from queuestore import ALL, IterOptions, Job, JobState

#: the largest page of iter and batch_size, and past what one Lua unpack takes
N = 10_000


def ids_of(stem: str) -> list[str]:
    """``N`` ids: the stem and a zero-padded number, in sorted order."""
    return [f"{stem}{i:05}" for i in range(N)]


async def check_the_other_states(b: Any) -> None:
    """Delayed jobs listed and purged, dead ones imported, listed and redriven, ready ones held,
    listed and released by a migration: ``N`` at a time, each job accounted for."""
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


async def fill_and_list(b: Any) -> list[str]:
    """``N`` ready jobs stored once (a second store of each refused), read back by id and listed
    both ways; returns their ids."""
    ids = ids_of("r")
    assert await b.enqueue_many([Job(id=i, payload=i) for i in ids]) == [True] * N
    assert await b.enqueue_many([Job(id=i) for i in ids]) == [False] * N
    found = await b.get_jobs(ids)
    assert [(j.id, j.state, j.payload) for j in found if j] == [(i, JobState.READY, i) for i in ids]
    assert [j.id async for j in b.iter(IterOptions(count=N))] == ids
    assert [j.id async for j in b.iter(IterOptions(count=N, reverse=True))] == ids[::-1]
    return ids

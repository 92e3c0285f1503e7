"""A follower hands back what it may not keep: the jobs are ready again with no attempt and no
retry counted, and a job whose lease is no longer the one handed back (acked meanwhile, or
leased again) is left alone."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from queuestore import BackendConfig, DequeueOptions, Job, JobState, default_registry
from queuestore.abc import LeaseHandBack, QueueBackend
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["redis-lists", "redis-streams"])
async def backend(request: pytest.FixtureRequest, redis_server: RedisServer) -> AsyncIterator[QueueBackend]:
    cfg = BackendConfig(
        type=request.param,
        name="give-back",
        url=redis_server.url,
        queue=f"gb-{uuid.uuid4().hex[:8]}",
        options={"key_prefix": f"qs-gb-{uuid.uuid4().hex[:6]}:", "strict_keys": True},
    )
    b = await default_registry().create(request.param, cfg)
    try:
        yield b
    finally:
        await b.aclose()


async def test_jobs_handed_back_are_ready_unseen_and_an_acked_one_stays_gone(backend: QueueBackend) -> None:
    assert isinstance(backend, LeaseHandBack)
    ids = ["a", "b", "c"]
    assert await backend.enqueue_many([Job(id=i, max_retries=0) for i in ids]) == [True] * 3
    leased = await backend.dequeue_many(DequeueOptions(count=3))
    assert sorted(j.id for j in leased) == ids
    acked = next(j for j in leased if j.id == "c")
    await backend.ack(acked)
    await backend.migration_give_back(leased)
    back = await backend.get_jobs(ids)
    assert [(j.state, j.attempt, j.retry_count) if j else None for j in back] == [
        (JobState.READY, 0, 0),
        (JobState.READY, 0, 0),
        None,
    ]
    again = await backend.dequeue_many(DequeueOptions(count=3))
    assert sorted(j.id for j in again) == ["a", "b"]
    assert all(j.attempt == 1 for j in again)
    await backend.migration_give_back(leased)  # the old tokens: these leases are not theirs
    assert [j.state if j else None for j in await backend.get_jobs(["a", "b"])] == [JobState.IN_FLIGHT] * 2
    assert await backend.ack_many(again) == [True, True]

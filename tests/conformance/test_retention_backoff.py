"""Dead-letter retention (by age, by count) through the maintenance task, and retry backoff."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from queuestore import ConfigurationError, Job, JobState, QueueBackend

from .conftest import BackendMaker
from .conservation import Ledger, ids_in

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def maintained(backend: QueueBackend) -> AsyncIterator[None]:
    """Run the backend's maintenance task while the block runs."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(backend.run_maintenance)
        try:
            yield
        finally:
            tg.cancel_scope.cancel()


async def dead_letter(backend: QueueBackend, jobs: list[Job]) -> None:
    await backend.enqueue_many(jobs)
    for job in jobs:
        got = await backend.dequeue()
        assert got is not None
        assert got.id == job.id
        await backend.nack(got, requeue=False, error="poison")


async def wait_for_dead(backend: QueueBackend, want: list[str], within: float) -> None:
    with anyio.move_on_after(within):
        while await ids_in(backend, JobState.DEAD) != want:
            await anyio.sleep(0.05)
    assert await ids_in(backend, JobState.DEAD) == want


async def test_retention_by_age_drops_the_old_dead_jobs(make_backend: BackendMaker) -> None:
    backend = await make_backend(dead_retention="2s", dead_max="none", reclaim_interval=0.1)
    ledger = Ledger()
    old = [Job(payload=i, max_retries=0) for i in range(3)]
    young = Job(payload="young", max_retries=0)
    ledger.add([*old, young], JobState.DEAD)
    async with maintained(backend):
        await dead_letter(backend, old)
        await anyio.sleep(1.0)
        assert await ids_in(backend, JobState.DEAD) == [j.id for j in old], "not old enough yet"
        await anyio.sleep(1.3)
        await dead_letter(backend, [young])
        await wait_for_dead(backend, [young.id], within=1.0)
    for job in old:
        ledger.remove(job.id, "dropped by retention")
    await ledger.check(backend)
    assert (await backend.stats()).total_dead_dropped == 3


async def test_retention_by_count_drops_the_oldest_first(make_backend: BackendMaker) -> None:
    backend = await make_backend(dead_max=2, reclaim_interval=0.1)
    ledger = Ledger()
    jobs = [Job(payload=i, max_retries=0) for i in range(5)]
    ledger.add(jobs, JobState.DEAD)
    assert (await backend.stats()).total_dead_dropped == 0
    await dead_letter(backend, jobs)
    assert await ids_in(backend, JobState.DEAD) == [j.id for j in jobs], "only the maintenance task drops"
    async with maintained(backend):
        await wait_for_dead(backend, [jobs[3].id, jobs[4].id], within=3.0)
    for job in jobs[:3]:
        ledger.remove(job.id, "dropped by retention")
    await ledger.check(backend)
    assert (await backend.stats()).total_dead_dropped == 3


async def test_retention_off_keeps_every_dead_job(make_backend: BackendMaker) -> None:
    backend = await make_backend(dead_retention=0, dead_max=0, reclaim_interval=0.1)
    jobs = [Job(payload=i, max_retries=0) for i in range(3)]
    await dead_letter(backend, jobs)
    async with maintained(backend):
        await anyio.sleep(0.5)
    assert await ids_in(backend, JobState.DEAD) == [j.id for j in jobs]
    assert (await backend.stats()).total_dead_dropped == 0


async def test_retention_and_backoff_options_are_checked(make_backend: BackendMaker) -> None:
    bad = {
        "dead_retention": ("forever", "options.dead_retention"),
        "dead_max": (-1, "options.dead_max"),
        "retry_backoff": ({"factor": 0.5}, "options.retry_backoff.factor"),
    }
    for name, (value, field) in bad.items():
        with pytest.raises(ConfigurationError) as info:
            await make_backend(**{name: value})
        assert info.value.field == field
    with pytest.raises(ConfigurationError) as info:
        await make_backend(retry_backoff={"base": "1s", "jiter": 0.1})
    assert info.value.field.startswith("options.retry_backoff")


async def delay_after_nack(backend: QueueBackend, job: Job, **nack: float) -> float:
    """Enqueue, lease and nack ``job`` (requeue); how far in the future it became available."""
    await backend.enqueue(job)
    got = await backend.dequeue()
    assert got is not None
    assert got.id == job.id
    before = time.time()
    await backend.nack(got, **nack)
    stored = [j async for j in backend.iter() if j.id == job.id]
    assert len(stored) == 1
    if stored[0].state is JobState.READY:
        return 0.0
    assert stored[0].state is JobState.DELAYED
    assert stored[0].available_at is not None
    return stored[0].available_at - before


async def test_backoff_without_jitter_is_exact(make_backend: BackendMaker) -> None:
    backend = await make_backend(retry_backoff={"base": "2s", "factor": 3, "max": "30s", "jitter": 0})
    # retry_count before the nack -> min(max, base * factor ** retry_count)
    for retry_count, want in ((0, 2.0), (1, 6.0), (2, 18.0), (3, 30.0), (40, 30.0)):
        job = Job(payload=retry_count, retry_count=retry_count, max_retries=100)
        got = await delay_after_nack(backend, job)
        assert want - 0.25 <= got <= want + 0.05, f"retry_count {retry_count}: delay {got}, want {want}"
        stored = [j async for j in backend.iter() if j.id == job.id]
        assert [j.retry_count for j in stored] == [retry_count + 1]


async def test_backoff_jitter_stays_within_bounds(make_backend: BackendMaker) -> None:
    backend = await make_backend(retry_backoff={"base": "10s", "factor": 2, "max": "10m", "jitter": 0.5})
    delays = [await delay_after_nack(backend, Job(payload=i, max_retries=5)) for i in range(8)]
    for d in delays:
        assert 5.0 - 0.25 <= d <= 15.0 + 0.05, delays
    assert len({round(d, 3) for d in delays}) > 1, f"jitter drew one value: {delays}"


async def test_explicit_delay_wins_over_the_backoff(make_backend: BackendMaker) -> None:
    backend = await make_backend(retry_backoff={"base": "20s", "jitter": 0})
    now = Job(payload="now")
    assert await delay_after_nack(backend, now, delay=0) == 0.0
    again = await backend.dequeue()
    assert again is not None
    assert again.id == now.id, "ready at once"
    await backend.ack(again)
    later = await delay_after_nack(backend, Job(payload="later"), delay=3)
    assert 3.0 - 0.25 <= later <= 3.0 + 0.05
    policy = await delay_after_nack(backend, Job(payload="policy"))
    assert 20.0 - 0.25 <= policy <= 20.0 + 0.05


async def test_no_backoff_by_default_a_nacked_job_is_ready_at_once(backend: QueueBackend) -> None:
    assert await delay_after_nack(backend, Job(payload=1)) == 0.0
    assert await backend.peek(0) is not None

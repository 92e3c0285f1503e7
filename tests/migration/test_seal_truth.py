"""Truth across the seal: a storing call split into several script calls (redis-lists: one per
``batch_size`` jobs; redis-streams: one per 1,000) that straddles the
moment a migration seals the queue reports, job by job, what really happened -- the rows
stored on the source before the seal say True, only the refused rows go to the new home and
their results come from there; each coalesced ``enqueue`` caller gets the truth for its own
job. Every job ends up stored exactly once, on one side."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import pytest

from queuestore import BackendManager, Job, QueueBackend
from queuestore.backends._redis.scripts import MAX_JOBS_PER_SCRIPT
from queuestore.migration._home import describe

from .conftest import ConfigMaker
from .helpers import open_plain, stored_ids

pytestmark = pytest.mark.anyio

N = 1500  # jobs per call: one script call each (redis-lists, batch_size 1, pipeline_size 1)
#: redis-streams stores MAX_JOBS_PER_SCRIPT jobs per script call: ten calls, sealed after the first
STREAMS_N = 10 * MAX_JOBS_PER_SCRIPT


async def _straddle(
    redis_pair: ConfigMaker,
    write: Callable[[QueueBackend, list[Job]], Awaitable[list[bool]]],
    source: str = "redis-lists",
) -> None:
    if source == "redis-lists":
        queue, cfg = redis_pair("redis-lists", "redis-streams")
        cfg.backends["src"].options.update({"batch_size": 1, "pipeline_size": 1})
        n, sealed_at = N, N // 5
    else:
        queue, cfg = redis_pair("redis-streams", "redis-lists")
        n, sealed_at = STREAMS_N, MAX_JOBS_PER_SCRIPT
    manager = await BackendManager.from_config(cfg, home_check_interval=0)
    async with manager:
        writer = manager.get_backend(queue)
        sealer = await open_plain(manager, "src", queue)
        home = describe(cfg.get_backend_config("dst")).encode()  # what a migration's seal writes
        jobs = [Job(payload=i) for i in range(n)]
        results: list[bool] = []
        assert await sealer.length() == 0  # its connection made before the race

        async def writes() -> None:
            results.extend(await write(writer, jobs))

        async def seal() -> None:
            while await sealer.length() < sealed_at:
                await anyio.sleep(0.001)
            claim = await sealer.migration_record("claim", owner="A", lease=60, fields={"home": home})
            assert claim.granted

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(writes)
                tg.start_soon(seal)
        source = await open_plain(manager, "src", queue)
        target = await open_plain(manager, "dst", queue)
        on_source, on_target = await stored_ids(source), await stored_ids(target)
        assert on_source, "nothing stored before the seal"
        assert on_target, "the seal landed after the call: nothing was sent to the new home"
        assert not set(on_source) & set(on_target)  # never on both sides
        assert set(on_source) | set(on_target) == {j.id for j in jobs}
        assert max(on_source.values()) == 1
        assert max(on_target.values()) == 1
        assert results == [True] * n  # every job was new: each one's call says it was stored


@pytest.mark.parametrize("source", ["redis-lists", "redis-streams"])
async def test_enqueue_many_straddling_the_seal_reports_each_row_truly(
    redis_pair: ConfigMaker, source: str
) -> None:
    async def write(backend: QueueBackend, jobs: list[Job]) -> list[bool]:
        return await backend.enqueue_many(jobs)

    await _straddle(redis_pair, write, source)


async def test_coalesced_enqueues_straddling_the_seal_each_get_the_truth(redis_pair: ConfigMaker) -> None:
    async def write(backend: QueueBackend, jobs: list[Job]) -> list[bool]:
        out: list[bool | None] = [None] * len(jobs)

        async def one(i: int) -> None:
            out[i] = await backend.enqueue(jobs[i])

        async with anyio.create_task_group() as tg:
            for i in range(len(jobs)):
                tg.start_soon(one, i)
        return [bool(r) if r is not None else False for r in out]

    await _straddle(redis_pair, write)

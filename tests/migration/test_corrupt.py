"""A migration out of a Redis backend meets an undecodable stored job: on_corrupt="fail" fails
loudly naming the job and keeps it held, a rollback puts it back, on_corrupt="dead_letter"
dead-letters it in the target; verification looks jobs up with get_jobs. One body of test for
every source backend, each with its own way of planting garbage and its own decode message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from queuestore import Job, JobState, QueueBackend, SerializationError
from queuestore.backends.redis_streams.layout import CORRUPT_PREFIX
from queuestore.migration import MigrationManager, MigrationOptions, MigrationPhase, MigrationTool
from tests.migration.helpers import manager_for, redis_backend, two_backend_config, unique
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio


async def _damage_lists(source: Any, job_id: str) -> None:
    await source._call("t", "HSET", source.block[0], job_id, b"\xc1 garbage")


async def _damage_streams(source: Any, job_id: str) -> None:
    raw, k = source.conn.client, source.skeys
    old = await raw.hget(k.idx, job_id)  # replace the stored entry by an undecodable one
    await raw.hset(k.idx, job_id, await raw.xadd(k.stream, {"j": job_id, "b": b"\xc1 garbage"}))
    await raw.xdel(k.stream, old)


#: source type -> (how to plant garbage, the failure it reports, what the dead reason says,
#: held job marked with the prefix)
SOURCES: dict[str, tuple[Callable[[Any, str], Awaitable[None]], str, str, bool]] = {
    "redis-lists": (_damage_lists, "undecodable job body", "undecodable", False),
    "redis-streams": (_damage_streams, "could not be decoded", "could not be decoded", True),
}


@pytest.mark.parametrize(
    ("source_type", "target_type"),
    [("redis-lists", "redis-lists"), ("redis-streams", "redis-lists"), ("redis-streams", "redis-streams")],
)
async def test_corrupt_entry_fails_loudly_rolls_back_and_dead_letters(
    redis_server: RedisServer, source_type: str, target_type: str
) -> None:
    damage, decode_message, dead_message, marked = SOURCES[source_type]
    queue = unique("mq")
    src = redis_backend(source_type, redis_server.url, unique("qs-mig-src") + ":", strict_keys=True)
    dst = redis_backend(target_type, redis_server.url, unique("qs-mig-dst") + ":", strict_keys=True)
    manager = await manager_for(two_backend_config(queue, src, dst))
    jobs = [Job(payload={"n": n}) for n in range(12)]
    bad = jobs[5]
    async with manager:
        source: QueueBackend = manager.get_backend(queue)
        assert await source.enqueue_many(jobs) == [True] * 12
        await damage(source, bad.id)
        opts = MigrationOptions(target_backend="dst", drain_first=False, batch_size=4)
        tool = MigrationTool(manager)

        status = await tool.execute_migration(queue, opts, raise_on_failure=False)
        assert status.phase is MigrationPhase.FAILED
        assert status.failed_phase == "copying"
        assert status.last_error is not None
        assert bad.id in status.last_error
        assert decode_message in status.last_error
        held = await source.migration_held(status.migration_id)
        assert [j.id for j in held] == [bad.id]  # kept safely held, marked
        if marked:
            assert (held[0].last_error or "").startswith(CORRUPT_PREFIX)

        rolled = await MigrationManager(manager).rollback_migration(queue, opts)
        assert rolled.phase is MigrationPhase.ROLLED_BACK
        assert manager.get_backend(queue) is source
        assert await source.migration_held(status.migration_id) == []
        with pytest.raises(SerializationError, match=bad.id):
            await source.get_jobs([bad.id])  # back on the source, still garbage
        rest = await source.get_jobs([j.id for j in jobs if j is not bad])
        assert all(j is not None and j.state is JobState.READY for j in rest)

        opts = MigrationOptions(
            target_backend="dst", drain_first=False, batch_size=4, on_corrupt="dead_letter"
        )
        status = await tool.execute_migration(queue, opts)
        assert status.phase is MigrationPhase.COMPLETED
        assert status.verified
        assert status.failed_jobs == 1
        assert any("by get_jobs" in m for m in status.messages)
        target = manager.get_backend(queue)
        got = {j.id: j for j in await target.get_jobs([j.id for j in jobs]) if j is not None}
        assert set(got) == {j.id for j in jobs}
        assert got[bad.id].state is JobState.DEAD
        assert "corrupt" in (got[bad.id].dead_reason or "")
        assert dead_message in (got[bad.id].dead_reason or "")
        assert all(
            got[j.id].state is JobState.READY and got[j.id].payload == j.payload for j in jobs if j is not bad
        )

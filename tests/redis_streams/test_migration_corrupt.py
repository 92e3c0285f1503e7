"""A migration out of redis-streams meets an undecodable entry: on_corrupt="fail" fails loudly
naming the job and keeps it held, a rollback puts it back, on_corrupt="dead_letter" dead-letters
it in the target; verification looks jobs up with get_jobs (as tests/redis_lists does)."""

from __future__ import annotations

import pytest

from queuestore import Job, JobState, SerializationError
from queuestore.backends._streams_model import CORRUPT_PREFIX
from queuestore.migration import MigrationManager, MigrationOptions, MigrationPhase, MigrationTool
from tests.migration.helpers import manager_for, redis_backend, two_backend_config, unique
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("target_type", ["redis-lists", "redis-streams"])
async def test_corrupt_entry_fails_loudly_rolls_back_and_dead_letters(
    redis_server: RedisServer, target_type: str
) -> None:
    queue = unique("mq")
    src = redis_backend("redis-streams", redis_server.url, unique("qs-mig-src") + ":", strict_keys=True)
    dst = redis_backend(target_type, redis_server.url, unique("qs-mig-dst") + ":", strict_keys=True)
    manager = await manager_for(two_backend_config(queue, src, dst))
    jobs = [Job(payload={"n": n}) for n in range(12)]
    bad = jobs[5]
    async with manager:
        source = manager.get_backend(queue)
        assert await source.enqueue_many(jobs) == [True] * 12
        raw, k = source.conn.client, source.skeys  # type: ignore[attr-defined]
        old = await raw.hget(k.idx, bad.id)  # damage the body of one stored job
        await raw.hset(k.idx, bad.id, await raw.xadd(k.stream, {"j": bad.id, "b": b"\xc1 garbage"}))
        await raw.xdel(k.stream, old)
        opts = MigrationOptions(target_backend="dst", drain_first=False, batch_size=4)
        tool = MigrationTool(manager)

        status = await tool.execute_migration(queue, opts, raise_on_failure=False)
        assert status.phase is MigrationPhase.FAILED
        assert status.failed_phase == "copying"
        assert status.last_error is not None
        assert bad.id in status.last_error
        assert "could not be decoded" in status.last_error
        held = await source.migration_held(status.migration_id)
        assert [j.id for j in held] == [bad.id]  # kept safely held, marked
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
        assert "could not be decoded" in (got[bad.id].dead_reason or "")
        assert all(
            got[j.id].state is JobState.READY and got[j.id].payload == j.payload for j in jobs if j is not bad
        )

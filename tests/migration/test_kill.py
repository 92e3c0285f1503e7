"""Done-when: a migration process killed -9 at different protocol steps, then resumed,
ends with every job in the target exactly once (and nothing left in the source)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio
import msgspec
import pytest

from queuestore import BackendManager, DequeueOptions, Job
from queuestore.migration import MigrationOptions, MigrationPhase, MigrationTool
from queuestore.migration._routing import RoutingBackend
from tests.servers import RedisServer

from .helpers import manager_for, redis_backend, stored_ids, two_backend_config, unique

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

HELPER = Path(__file__).with_name("kill_helper.py")
POINTS = [
    ("redis-lists", "redis-streams", "held", 1),
    ("redis-streams", "redis-lists", "imported", 2),
    ("redis-lists", "redis-streams", "released", 4),
    ("redis-streams", "redis-lists", "held", 7),
    ("redis-lists", "redis-streams", "imported", 12),
    ("redis-streams", "redis-lists", "verifying", 0),
    ("redis-lists", "redis-streams", "switching", 0),
]


async def _fill(manager: BackendManager, queue: str) -> set[str]:
    b = manager.get_backend(queue)
    jobs = [Job(payload={"i": i}, priority=i % 3) for i in range(1500)]
    await b.enqueue_many(jobs)
    delayed = [Job(payload={"d": i}).delayed(300) for i in range(100)]
    await b.enqueue_many(delayed)
    for job in await b.dequeue_many(DequeueOptions(count=50)):
        await b.nack(job, requeue=False, error="dead")
    return {j.id for j in jobs + delayed}


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("src", "dst", "step", "batch"), POINTS, ids=[f"{p[2]}-{p[3]}" for p in POINTS])
async def test_killed_migration_resumes_exactly_once(
    redis_server: RedisServer, src: str, dst: str, step: str, batch: int
) -> None:
    queue = unique("mq")
    sp, dp = unique("qs-kill-src") + ":", unique("qs-kill-dst") + ":"
    cfg = two_backend_config(
        queue, redis_backend(src, redis_server.url, sp), redis_backend(dst, redis_server.url, dp)
    )
    manager = await manager_for(cfg)
    async with manager:
        ids = await _fill(manager, queue)
    env = {
        **os.environ, "QS_URL": redis_server.url, "QS_QUEUE": queue, "QS_SRC_TYPE": src, "QS_SRC_PREFIX": sp,
        "QS_DST_TYPE": dst, "QS_DST_PREFIX": dp, "QS_KILL_STEP": step, "QS_KILL_BATCH": str(batch),
    }  # fmt: skip
    with anyio.fail_after(60):
        proc = await anyio.run_process([sys.executable, str(HELPER)], env=env, check=False)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]

    cfg = two_backend_config(
        queue, redis_backend(src, redis_server.url, sp), redis_backend(dst, redis_server.url, dp)
    )
    manager = await manager_for(cfg)
    async with manager:
        tool = MigrationTool(manager)
        plan = await tool.plan_migration(queue, MigrationOptions(target_backend="dst"))
        if step in ("held", "imported"):
            assert plan.held_jobs > 0
            assert any("interrupted" in w for w in plan.warnings)
        source = manager.get_backend(queue)
        if isinstance(source, RoutingBackend):  # this process followed the sealed source already
            source = source.source
        # the killed run's owner lease (1 s) may still be live: this process sees that its
        # owner is dead and takes over once the lease ran out
        status = await tool.execute_migration(
            queue, MigrationOptions(target_backend="dst", drain_first=False)
        )
        assert status.phase is MigrationPhase.COMPLETED
        assert status.verified
        target = manager.get_backend(queue)
        assert target.name == "dst"
        at_rest = await stored_ids(target)
        assert set(at_rest) == ids
        assert max(at_rest.values()) == 1
        leftover = await manager.open_backend(msgspec.structs.replace(cfg.backends["src"], queue=queue))
        assert await stored_ids(leftover) == {}
        assert await leftover.migration_held(status.migration_id) == []
        assert source.closed

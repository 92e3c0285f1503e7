"""Real servers: a target named by a backend type gets its own key namespace under the source's
prefix, a named target that would share the source's keys is refused, and the plan and the
status say what to add to the config."""

from __future__ import annotations

from typing import Any

import pytest

from queuestore import (
    BackendConfig,
    BackendManager,
    DequeueOptions,
    Job,
    JobState,
    MigrationError,
    QueueBackend,
    QueueConfig,
    StorageConfig,
)
from queuestore.migration import (
    MigrationOptions,
    MigrationPhase,
    MigrationTool,
)
from tests.servers import RedisServer

from .helpers import manager_for, open_plain, stored_ids, stored_jobs, unique

pytestmark = pytest.mark.anyio


def _one_backend(queue: str, type_: str, url: str, **options: Any) -> StorageConfig:
    src = BackendConfig(type=type_, name="src", url=url, options=dict(options))
    return StorageConfig(backends={"src": src}, queues={queue: QueueConfig(backend="src")})


async def _mixed(b: QueueBackend, ready: int = 10, delayed: int = 5, dead: int = 3) -> dict[str, set[str]]:
    """``ready`` ready, ``delayed`` delayed (10 minutes) and ``dead`` dead-lettered jobs, by state."""
    doomed = [Job(payload={"dead": i}, max_retries=0) for i in range(dead)]
    await b.enqueue_many(doomed)
    for _ in range(dead):
        got = await b.dequeue(DequeueOptions(timeout=0))
        assert got is not None
        await b.nack(got, requeue=False, error="poison")
    later = [Job(payload={"later": i}).delayed(600) for i in range(delayed)]
    now = [Job(payload={"now": i}) for i in range(ready)]
    await b.enqueue_many(later + now)
    return {"ready": {j.id for j in now}, "delayed": {j.id for j in later}, "dead": {j.id for j in doomed}}


@pytest.mark.parametrize(
    ("src_type", "dst_type"), [("redis-lists", "redis-streams"), ("redis-streams", "redis-lists")]
)
async def test_type_name_target_gets_its_own_key_namespace(
    redis_server: RedisServer, src_type: str, dst_type: str
) -> None:
    queue = unique("mq")  # the source uses the default key_prefix, as a type-name target would
    manager = await manager_for(_one_backend(queue, src_type, redis_server.url))
    async with manager:
        source = manager.get_backend(queue)
        by_state = await _mixed(source)
        due = {
            j.id: j.available_at for j in (await stored_jobs(source)).values() if j.id in by_state["delayed"]
        }
        status = await MigrationTool(manager).quick_migrate(queue, dst_type)
        assert status.phase is MigrationPhase.COMPLETED, status.last_error
        cfg = manager.get_backend_config(queue)
        assert cfg.type == dst_type
        assert cfg.options["key_prefix"] == f"queue:{dst_type}:"
        target = manager.get_backend(queue)
        at_rest = await stored_jobs(target)
        assert {i for i, j in at_rest.items() if j.state is JobState.DELAYED} == by_state["delayed"]
        assert {i for i, j in at_rest.items() if j.state is JobState.DEAD} == by_state["dead"]
        assert {i for i, j in at_rest.items() if j.state is JobState.READY} == by_state["ready"]
        for job_id, when in due.items():
            assert when is not None
            assert at_rest[job_id].available_at == pytest.approx(when, abs=0.01)
        assert await stored_ids(await open_plain(manager, "src", queue)) == {}
        client = redis_server.sync_client()
        theirs = {k.decode() for k in client.scan_iter(match=f"queue:{dst_type}:{{{queue}}}*")}
        assert theirs
        assert not {k.decode() for k in client.scan_iter(match=f"queue:{{{queue}}}*")} & theirs


async def test_type_name_target_keeps_the_source_prefix_and_the_plan_warns(redis_server: RedisServer) -> None:
    queue, prefix = unique("reports"), unique("app") + ":"
    manager = await manager_for(_one_backend(queue, "redis-streams", redis_server.url, key_prefix=prefix))
    async with manager:
        ids = {
            j.id for j in [Job(payload=i) for i in range(7)] if await manager.get_backend(queue).enqueue(j)
        }
        plan = await MigrationTool(manager).plan_migration(
            queue, MigrationOptions(target_backend="redis-lists")
        )
        home = [w for w in plan.warnings if "not a backend of the config" in w]
        assert len(home) == 1
        assert f"key_prefix {prefix}redis-lists:" in home[0]
        status = await MigrationTool(manager).quick_migrate(queue, "redis-lists")
        assert status.phase is MigrationPhase.COMPLETED, status.last_error
        assert any("not a backend of the config" in m for m in status.messages)
        assert manager.get_backend_config(queue).options["key_prefix"] == f"{prefix}redis-lists:"
        # the same store, opened from the config the migration reports, holds the queue
        fresh = BackendManager()
        async with fresh:
            await fresh.add_backend(queue, manager.get_backend_config(queue))
            assert set(await stored_ids(fresh.get_backend(queue))) == ids


async def test_named_targets_sharing_the_sources_keys_are_refused(redis_server: RedisServer) -> None:
    queue, prefix = unique("mq"), unique("qs-mig") + ":"
    src = BackendConfig(type="redis-lists", name="src", url=redis_server.url, options={"key_prefix": prefix})
    same_server = redis_server.url.removesuffix("/0")  # the same database: 0 by default
    assert same_server != redis_server.url
    dst = BackendConfig(type="redis-streams", name="dst", url=same_server, options={"key_prefix": prefix})
    cfg = StorageConfig(backends={"src": src, "dst": dst}, queues={queue: QueueConfig(backend="src")})
    manager = await manager_for(cfg)
    async with manager:
        job = Job(payload=1).delayed(600)
        await manager.get_backend(queue).enqueue(job)
        with pytest.raises(MigrationError) as err:
            await MigrationTool(manager).quick_migrate(queue, "dst")
        assert err.value.phase == "validation"
        assert "share keys" in str(err.value)
        assert (await manager.get_backend(queue).get_jobs([job.id]))[0] is not None  # type: ignore[attr-defined]

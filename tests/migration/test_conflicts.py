"""Real servers: an id already on the target is a conflict (or, identical, skipped), never an
overwrite; nothing is lost either way and the error names the ids."""

from __future__ import annotations

import pytest

from queuestore import (
    Job,
    JobState,
    MigrationError,
)
from queuestore.migration import (
    MigrationManager,
    MigrationOptions,
    MigrationPhase,
    MigrationTool,
)
from queuestore.migration._routing import RoutingBackend

from .conftest import ConfigMaker
from .helpers import manager_for, open_plain, stored_ids

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("pair", [("redis-lists", "redis-streams"), ("redis-streams", "redis-lists")])
async def test_an_id_already_on_the_target_is_a_conflict(
    redis_pair: ConfigMaker, pair: tuple[str, str]
) -> None:
    queue, cfg = redis_pair(*pair)
    manager = await manager_for(cfg)
    async with manager:
        source = manager.get_backend(queue)
        target = await open_plain(manager, "dst", queue)
        clash, same = Job(payload={"v": "NEW"}), Job(payload={"v": "SAME"})
        others = [Job(payload={"i": i}) for i in range(20)]
        await source.enqueue_many([clash, same, *others])
        await target.enqueue(Job(id=clash.id, payload={"v": "OLD"}))
        await target.enqueue(same)  # the same job, already there: not a conflict
        status = await MigrationTool(manager).execute_migration(
            queue, MigrationOptions(target_backend="dst", batch_size=7), raise_on_failure=False
        )
        assert status.phase is MigrationPhase.FAILED
        assert status.failed_phase == "copying"
        assert status.last_error is not None
        assert clash.id in status.last_error
        assert same.id not in status.last_error
        proxy = manager.get_backend(queue)
        assert isinstance(proxy, RoutingBackend)
        on_source = (await proxy.source.get_jobs([clash.id]))[0]  # type: ignore[attr-defined]
        assert on_source is not None
        assert on_source.payload == {"v": "NEW"}
        assert on_source.state is JobState.READY
        assert await proxy.source.migration_held(status.migration_id) == []  # type: ignore[attr-defined]
        on_target = (await proxy.target.get_jobs([clash.id]))[0]  # type: ignore[attr-defined]
        assert on_target is not None
        assert on_target.payload == {"v": "OLD"}
        assert status.skipped_jobs == 1
        both = await stored_ids(proxy.source) + await stored_ids(proxy.target)
        assert set(both) == {clash.id, same.id} | {j.id for j in others}
        assert both[clash.id] == 2  # one on each side, neither overwritten
        assert max(c for i, c in both.items() if i != clash.id) == 1
        async with MigrationManager(manager) as mm:
            with pytest.raises(MigrationError) as err:
                await mm.rollback_migration(queue, MigrationOptions(target_backend="dst"))
        assert clash.id in str(err.value)
        back = (await proxy.source.get_jobs([clash.id]))[0]  # type: ignore[attr-defined]
        assert back is not None
        assert back.payload == {"v": "NEW"}
        there = (await proxy.target.get_jobs([clash.id]))[0]  # type: ignore[attr-defined]
        assert there is not None
        assert there.payload == {"v": "OLD"}

"""A follower across several runs of a queue's migration: it decides from the records which
side it may lease from, so it never consumes what a run moved before that run verified it --
a new run after a rollback it followed, and a run back right after a completed one; and a
lease that outlived the grace after a new run's seal is given back."""

from __future__ import annotations

from collections import Counter

import anyio
import pytest

from queuestore import BackendManager, DequeueOptions, Job, JobState, StorageConfig
from queuestore.migration import MigrationManager, MigrationOptions, MigrationPhase
from queuestore.migration._lease_guard import SEAL_GRACE
from queuestore.migration._routing import RoutingBackend

from .conftest import ConfigMaker
from .helpers import open_plain, stored_ids

pytestmark = pytest.mark.anyio


class Pause:
    """A step hook that stops each run after batch ``batch`` was released, until ``go(run)``."""

    def __init__(self, batch: int) -> None:
        self.batch, self.runs = batch, 0
        self.reached = [anyio.Event() for _ in range(3)]
        self.going = [anyio.Event() for _ in range(3)]

    async def __call__(self, step: str, batch: int) -> None:
        if step == "held" and batch == 1:
            self.runs += 1
        if step == "released" and batch == self.batch:
            self.reached[self.runs].set()
            await self.going[self.runs].wait()

    async def wait(self, run: int) -> None:
        with anyio.fail_after(20):
            await self.reached[run].wait()

    def go(self, run: int) -> None:
        self.going[run].set()


async def _consume(backend: object, rounds: int = 30) -> list[str]:
    """Lease and ack what the follower is given, ``rounds`` times (no waiting)."""
    assert isinstance(backend, RoutingBackend)
    got: list[str] = []
    for _ in range(rounds):
        jobs = await backend.dequeue_many(DequeueOptions(count=10))
        if jobs:
            assert all(await backend.ack_many(jobs))
        got += [j.id for j in jobs]
        await anyio.sleep(0.01)
    return got


async def _until(check: object, seconds: float = 10.0) -> None:
    with anyio.fail_after(seconds):
        while not check():  # type: ignore[operator]
            await anyio.sleep(0.02)


@pytest.fixture(params=["redis-lists->redis-streams", "redis-streams->redis-lists"])
def setup(request: pytest.FixtureRequest, redis_pair: ConfigMaker) -> tuple[str, StorageConfig]:
    src, dst = request.param.split("->")
    return redis_pair(src, dst)


async def test_a_follower_of_a_rollback_leaves_a_new_runs_target_alone_until_it_completed(
    setup: tuple[str, StorageConfig],
) -> None:
    queue, cfg = setup
    pause = Pause(batch=2)
    first = await BackendManager.from_config(cfg, home_check_interval=0)
    follower = await BackendManager.from_config(cfg, home_check_interval=0.05)
    opts = MigrationOptions(target_backend="dst", batch_size=50, drain_first=False)
    async with first, follower, MigrationManager(first, step_hook=pause) as mm:
        jobs = [Job(payload={"i": i}) for i in range(400)]
        assert all(await first.get_backend(queue).enqueue_many(jobs))
        await mm.start_migration(queue, opts)
        await pause.wait(1)
        await _until(lambda: isinstance(follower.get_backend(queue), RoutingBackend))
        # jobs leased on the target and not acked yet: in flight there after the rollback
        on_target = await open_plain(first, "dst", queue)
        leased = await on_target.dequeue_many(DequeueOptions(count=5, visibility_timeout=60))
        assert len(leased) == 5
        await mm.cancel_migration(queue)
        back = await mm.rollback_migration(queue)
        assert back.phase == MigrationPhase.ROLLED_BACK
        routed = follower.get_backend(queue)
        assert isinstance(routed, RoutingBackend)
        await _until(lambda: routed.rolled_back)  # it followed the rollback (jobs in flight there)

        await mm.start_migration(queue, opts)  # the same migration again: the same id
        await pause.wait(2)
        consumed = await _consume(follower.get_backend(queue))
        pause.go(2)
        final = await mm.wait(queue)
        assert final.phase == MigrationPhase.COMPLETED, (final.last_error, final.messages)
        assert final.verified
        assert consumed  # it drained the source meanwhile

        for job in leased:
            await on_target.ack(job)
        at_rest = await stored_ids(on_target)
        assert not set(at_rest) & set(consumed)
        done = Counter(consumed) + Counter(j.id for j in leased)
        assert set(at_rest) | set(done) == {j.id for j in jobs}
        assert max((at_rest + done).values()) == 1


async def test_a_run_back_right_after_completion_verifies_while_a_follower_routes_both_sides(
    setup: tuple[str, StorageConfig],
) -> None:
    queue, cfg = setup
    pause = Pause(batch=2)
    first = await BackendManager.from_config(cfg, home_check_interval=0)
    # it follows when a write is told; it never settles on the new home by itself
    follower = await BackendManager.from_config(cfg, home_check_interval=3600)
    async with first, follower, MigrationManager(first, step_hook=pause) as mm:
        jobs = [Job(payload={"i": i}) for i in range(400)]
        assert all(await first.get_backend(queue).enqueue_many(jobs))
        await mm.start_migration(queue, MigrationOptions(target_backend="dst", batch_size=50))
        await pause.wait(1)
        written = [Job(payload="followed")]
        assert await follower.get_backend(queue).enqueue(written[0]) is True
        assert isinstance(follower.get_backend(queue), RoutingBackend)
        pause.go(1)
        there = await mm.wait(queue)
        assert there.phase == MigrationPhase.COMPLETED, there.last_error

        back_opts = MigrationOptions(target_backend="src", batch_size=50, drain_first=False)
        await mm.start_migration(queue, back_opts)
        await pause.wait(2)
        routed = follower.get_backend(queue)
        written.append(Job(payload="during the run back"))
        assert await routed.enqueue(written[1]) is True
        consumed = await _consume(routed, rounds=60)  # more than the run back left on B
        pause.go(2)
        final = await mm.wait(queue)
        assert final.phase == MigrationPhase.COMPLETED, (final.last_error, final.messages)
        assert final.verified

        home = await open_plain(first, "src", queue)
        away = await open_plain(first, "dst", queue)
        at_rest = await stored_ids(home)
        assert await stored_ids(away) == Counter()
        everything = {j.id for j in jobs + written}
        assert set(at_rest) | set(consumed) == everything
        assert max((at_rest + Counter(consumed)).values()) == 1


async def test_a_lease_older_than_the_grace_taken_from_a_new_runs_target_is_given_back(
    setup: tuple[str, StorageConfig],
) -> None:
    queue, cfg = setup
    pause = Pause(batch=2)
    first = await BackendManager.from_config(cfg, home_check_interval=0)
    follower = await BackendManager.from_config(cfg, home_check_interval=0)  # follows when told
    opts = MigrationOptions(target_backend="dst", batch_size=50, drain_first=False)
    async with first, follower, MigrationManager(first, step_hook=pause) as mm:
        jobs = [Job(payload={"i": i}) for i in range(400)]
        assert all(await first.get_backend(queue).enqueue_many(jobs))
        await mm.start_migration(queue, opts)
        await pause.wait(1)
        written = Job(payload="followed")
        assert await follower.get_backend(queue).enqueue(written) is True
        routed = follower.get_backend(queue)
        assert isinstance(routed, RoutingBackend)
        assert routed.guard is not None
        await mm.cancel_migration(queue)
        await mm.rollback_migration(queue)
        assert await routed.guard.allowed(routed.target)  # nothing runs into the target now
        await anyio.sleep(SEAL_GRACE)  # that read is older than the grace from here on

        await mm.start_migration(queue, opts)
        await pause.wait(2)
        on_target = await open_plain(first, "dst", queue)
        leased = await on_target.dequeue_many(DequeueOptions(count=5))
        assert len(leased) == 5  # jobs the new run moved
        assert await routed.guard.keep(routed.target, leased) == []  # a fresh read: given back
        back = await on_target.get_jobs([j.id for j in leased])
        assert all(j is not None and j.state is JobState.READY for j in back)
        # handed back unseen: no attempt and no retry counted (a nack would count both)
        assert [(j.attempt, j.retry_count) for j in back if j is not None] == [(0, 0)] * 5
        pause.go(2)
        final = await mm.wait(queue)
        assert final.phase == MigrationPhase.COMPLETED, (final.last_error, final.messages)
        assert final.verified
        at_rest = await stored_ids(on_target)
        assert set(at_rest) == {j.id for j in [*jobs, written]}
        assert max(at_rest.values()) == 1

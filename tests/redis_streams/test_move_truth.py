"""``move`` reports what happened: a job that is not in the source is "not found" even when the
target holds a job of the same id, unless that copy was moved there from this queue (a retried
move stays a no-op); and a bare timeout given to ``dequeue`` is refused with the fix named."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from queuestore import DequeueOptions, Job, JobNotFoundError
from queuestore.migration._routing import RoutingBackend

from .conftest import Maker, unique

pytestmark = pytest.mark.anyio


async def test_move_of_a_job_the_source_never_had_is_not_found_though_the_target_has_the_id(
    make: Maker,
) -> None:
    src, dst = unique("src"), unique("dst")
    source, target = await make(src), await make(dst)
    await target.enqueue(Job(id="same-id", payload="the target's own"))
    with pytest.raises(JobNotFoundError):
        await source.move("same-id", dst)
    got = await target.get_jobs(["same-id"])
    assert got[0] is not None
    assert (got[0].payload, got[0].origin_queue) == ("the target's own", None)


async def test_a_retried_move_of_a_job_that_arrived_is_still_a_no_op(make: Maker) -> None:
    src, dst = unique("src"), unique("dst")
    source, target = await make(src), await make(dst)
    await source.enqueue(Job(id="m1", payload=1))
    await source.move("m1", dst)
    await source.move("m1", dst)  # the caller lost the reply and tries again
    assert (await source.length(), await target.length()) == (0, 1)
    got = await target.dequeue(DequeueOptions(timeout=0))
    assert got is not None
    assert got.origin_queue == src
    await source.move("m1", dst)  # leased in the target now: still the copy this queue sent
    assert await target.length() == 0


async def test_a_job_moved_in_from_a_third_queue_is_not_this_queues_move(make: Maker) -> None:
    a, b, c = unique("a"), unique("b"), unique("c")
    qa, qb, qc = await make(a), await make(b), await make(c)
    await qc.enqueue(Job(id="x", payload=1))
    await qc.move("x", b)
    with pytest.raises(JobNotFoundError):
        await qa.move("x", b)
    assert await qb.length() == 1


async def test_move_across_cluster_slots_of_a_job_the_source_never_had_is_not_found(
    make_cluster: Maker,
) -> None:
    src = unique("src")
    source = await make_cluster(src)
    prefix = source.options.key_prefix
    dst = next(
        n
        for n in (unique("dst") for _ in range(200))
        if key_slot(f"{prefix}{{{n}}}".encode()) != key_slot(f"{prefix}{{{src}}}".encode())
    )
    target = await make_cluster(dst)
    await target.enqueue(Job(id="same-id", payload="the target's own"))
    with pytest.raises(JobNotFoundError):
        await source.move("same-id", dst)
    await source.enqueue(Job(id="mine", payload=2))
    await source.move("mine", dst)
    await source.move("mine", dst)  # retried: a no-op
    assert (await source.length(), await target.length()) == (0, 2)


@pytest.mark.parametrize("method", ["dequeue", "dequeue_many"])
async def test_a_bare_timeout_is_refused_naming_the_fix(make: Maker, method: str) -> None:
    backend = await make()
    await backend.enqueue(Job(id="kept", payload=1))
    with pytest.raises(TypeError, match=rf"{method}\(DequeueOptions\(timeout=1.0\)\)"):
        await getattr(backend, method)(1.0)
    assert await backend.length() == 1, "nothing was taken"


@pytest.mark.parametrize("method", ["dequeue", "dequeue_many"])
async def test_the_migration_proxy_refuses_a_bare_timeout_too(make: Maker, method: str) -> None:
    source, target = await make(unique("src")), await make(unique("dst"))
    await source.enqueue(Job(id="kept", payload=1))
    proxy = RoutingBackend(
        source.queue,
        source,
        target,
        source_config=source.config,
        target_config=target.config,
        migration_id="m-bare-timeout",
    )
    await proxy.open()
    with pytest.raises(TypeError, match=rf"{method}\(DequeueOptions\(timeout=1.0\)\)"):
        await getattr(proxy, method)(1.0)
    assert (await source.length(), await target.length()) == (1, 0), "nothing was taken"

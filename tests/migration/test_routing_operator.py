"""The routing proxy of a migrating queue forwards redrive, purge and delete to both sides
(the target alone once switched) and sums what they did; a nack without a delay keeps the
holder's retry backoff."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from queuestore import ALL, BackendConfig, Job, JobState, LeaseLostError, QueueBackend
from queuestore.backends.memory import MemoryBackend, drop_namespace, unique_namespace
from queuestore.migration._routing import RoutingBackend

pytestmark = pytest.mark.anyio

Q = "routed"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def proxy() -> AsyncIterator[RoutingBackend]:
    spaces = [unique_namespace("route-src"), unique_namespace("route-dst")]
    configs = [
        BackendConfig(type="memory", name=name, queue=Q, options={"namespace": ns, **extra})
        for name, ns, extra in (
            ("src", spaces[0], {}),
            ("dst", spaces[1], {"retry_backoff": {"base": "5s", "jitter": 0}}),
        )
    ]
    source, target = (MemoryBackend(c) for c in configs)
    for b in (source, target):
        await b.open()
    routing = RoutingBackend(
        Q, source, target, source_config=configs[0], target_config=configs[1], migration_id="m1"
    )
    await routing.open()
    try:
        yield routing
    finally:
        await routing.aclose()
        for b in (source, target):
            await b.aclose()
        for ns in spaces:
            drop_namespace(ns)


async def dead(backend: QueueBackend, n: int, stem: str) -> list[str]:
    ids = [f"{stem}{i}" for i in range(n)]
    for job_id in ids:
        await backend.enqueue(Job(id=job_id, payload=job_id, max_retries=0))
        got = await backend.dequeue()
        assert got is not None
        await backend.nack(got, requeue=False)
    return ids


async def test_redrive_purge_delete_reach_both_sides(proxy: RoutingBackend) -> None:
    on_source = await dead(proxy.source, 2, "s")
    on_target = await dead(proxy.target, 3, "t")
    assert (await proxy.stats()).dead == 5
    assert await proxy.redrive([on_source[0], on_target[0], "nope"]) == 2
    assert await proxy.redrive(ALL) == 3
    assert (await proxy.stats()).dead == 0
    assert await proxy.length() == 5
    assert await proxy.purge(JobState.READY, [on_source[1], on_target[1]]) == 2
    assert await proxy.delete(on_target[2]) is True
    assert await proxy.delete(on_target[2]) is False
    assert await proxy.purge(JobState.READY, ALL) == 2
    assert await proxy.length() == 0

    proxy.switched = True  # after the switch only the target is asked
    await dead(proxy.source, 1, "left")
    assert await proxy.redrive(ALL) == 0
    assert await proxy.source.length() == 0


async def test_delete_fences_a_holder_through_the_proxy(proxy: RoutingBackend) -> None:
    await proxy.enqueue(Job(id="j1", payload=1))
    got = await proxy.dequeue()
    assert got is not None
    assert await proxy.delete("j1") is True
    with pytest.raises(LeaseLostError):
        await proxy.ack(got)


async def test_nack_without_delay_uses_the_holders_backoff(proxy: RoutingBackend) -> None:
    await proxy.enqueue(Job(id="b1", payload=1))  # enqueued on the target
    got = await proxy.dequeue()
    assert got is not None
    before = time.time()
    await proxy.nack(got)
    assert isinstance(proxy.target, MemoryBackend)
    stored = (await proxy.target.get_jobs(["b1"]))[0]
    assert stored is not None
    assert stored.available_at is not None
    assert stored.state is JobState.DELAYED
    assert 4.9 <= stored.available_at - before <= 5.05

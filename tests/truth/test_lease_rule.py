"""One rule for a lease past its deadline, on every backend: it stays the holder's until it is
reclaimed (by a dequeue or the maintenance loop). Before that, the holder's ack, nack,
extend_lease and move land; after it, the stale holder gets LeaseLostError.

Leases here are 0.3 s long; the sleeps that let them expire are 0.6 s. Nothing is timed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import pytest

import queuestore as qs
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio

LEASE = 0.3
EXPIRE = 0.6
TYPES = ["memory", "redis-lists", "redis-streams"]
Maker = Callable[[str], Awaitable[qs.QueueBackend]]


@pytest.fixture(params=TYPES)
async def make(request: pytest.FixtureRequest, redis_server: RedisServer) -> AsyncIterator[Maker]:
    """Backends of one type sharing one key space; no maintenance reclaim during a test."""
    type_, space = request.param, uuid.uuid4().hex[:8]
    opts: dict[str, object] = {"visibility_timeout": LEASE, "reclaim_interval": 3600}
    made: list[qs.QueueBackend] = []

    async def maker(queue: str) -> qs.QueueBackend:
        if type_ == "memory":
            cfg = qs.BackendConfig(type=type_, name="b", queue=queue, options={**opts, "namespace": space})
        else:
            cfg = qs.BackendConfig(
                type=type_,
                name="b",
                queue=queue,
                url=redis_server.url,
                options={**opts, "key_prefix": f"l{space}:"},
            )
        backend = await qs.default_registry().create(type_, cfg)
        await backend.__aenter__()
        made.append(backend)
        return backend

    yield maker
    for backend in made:
        await backend.aclose()


async def expired_lease(backend: qs.QueueBackend, job_id: str) -> qs.Job:
    await backend.enqueue(qs.Job(id=job_id, max_retries=5))
    got = await backend.dequeue(qs.DequeueOptions(timeout=0))
    assert got is not None
    assert got.id == job_id
    await anyio.sleep(EXPIRE)
    return got


async def test_ack_past_the_deadline_lands_until_reclaimed(make: Maker) -> None:
    backend = await make("rule")
    got = await expired_lease(backend, "late-ack")
    await backend.ack(got)
    assert await backend.length() == 0
    assert await backend.dequeue(qs.DequeueOptions(timeout=0)) is None  # gone, not redelivered
    stats = await backend.stats()
    assert stats.in_flight == 0


async def test_nack_and_extend_past_the_deadline_land_until_reclaimed(make: Maker) -> None:
    backend = await make("rule")
    got = await expired_lease(backend, "late-extend")
    await backend.extend_lease(got, 30)
    assert await backend.dequeue(qs.DequeueOptions(timeout=0)) is None  # the lease is alive again
    await backend.ack(got)
    got = await expired_lease(backend, "late-nack")
    await backend.nack(got, requeue=True)
    again = await backend.dequeue(qs.DequeueOptions(timeout=0))
    assert again is not None
    assert again.id == "late-nack"
    assert again.retry_count == 1  # one nack, no reclaim on top
    await backend.ack(again)


async def test_move_past_the_deadline_lands_until_reclaimed(make: Maker) -> None:
    backend = await make("rule")
    dlq = await make("rule-dlq")
    got = await expired_lease(backend, "late-move")
    await backend.move(got, "rule-dlq")
    assert await backend.length() == 0
    moved = await dlq.dequeue(qs.DequeueOptions(timeout=0))
    assert moved is not None
    assert moved.id == "late-move"


async def test_once_reclaimed_the_old_holder_has_lost_the_lease(make: Maker) -> None:
    backend = await make("rule")
    got = await expired_lease(backend, "reclaimed")
    again = await backend.dequeue(qs.DequeueOptions(timeout=0))  # reclaims and redelivers
    assert again is not None
    assert again.id == "reclaimed"
    assert again.lease_token != got.lease_token
    for call in (backend.ack, lambda j: backend.nack(j, requeue=True), lambda j: backend.extend_lease(j, 30)):
        with pytest.raises(qs.LeaseLostError):
            await call(got)
    await backend.ack(again)
    assert await backend.length() == 0

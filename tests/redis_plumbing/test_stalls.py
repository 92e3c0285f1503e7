"""A frozen (SIGSTOPped) or slow server: ``dequeue`` raises within the caller's timeout plus
``call_margin`` -- on a warm connection and when it needs a new one -- and loses nothing;
``health()`` is unhealthy when its PING gets no answer within ``health_timeout`` and degraded
when the answer is slower than ``health_latency_threshold``.

The servers get a long socket timeout (``read_timeout: 10s``), so only the call deadline can
end a stalled call early; every test also has a wide guard (``fail_after``) so a regression
fails instead of hanging."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from queuestore import (
    DequeueOptions,
    HealthLevel,
    Job,
    OperationTimeoutError,
)
from queuestore.testing import RedisServer, ServerFactory

from .conftest import Make, backend_maker

pytestmark = pytest.mark.anyio

TYPES = ["redis-streams", "redis-lists"]
#: a wide guard: the stalled calls below must end long before it (old code took 40 s here)
GUARD = 15.0


@pytest.fixture
async def server(redis_server_factory: ServerFactory) -> RedisServer:
    return redis_server_factory()


@pytest.fixture
async def make(server: RedisServer) -> AsyncIterator[Make]:
    options = {"read_timeout": "10s", "write_timeout": "10s", "strict_keys": True}
    async with backend_maker(server.url, "stall", **options) as create:
        yield create
        server.resume()


@pytest.mark.parametrize("coalesce", [False, True])
async def test_dequeue_on_a_frozen_server_raises_within_its_timeout_and_loses_nothing(
    server: RedisServer, make: Make, coalesce: bool
) -> None:
    backend = await make("redis-streams", visibility_timeout="1s", call_margin="1s", coalesce=coalesce)
    await backend.enqueue(Job(id="kept", payload=1))
    with (
        anyio.fail_after(GUARD),
        server.frozen(),
        pytest.raises(OperationTimeoutError, match="call_margin"),
    ):
        await backend.dequeue(DequeueOptions(timeout=0.5))
    # the take may have run once the server woke up: the job is then leased to nobody and
    # comes back when that lease expires; either way it is delivered once, then gone
    got = await backend.dequeue(DequeueOptions(timeout=5))
    assert got is not None
    assert got.id == "kept"
    await backend.ack(got)
    assert await backend.dequeue(DequeueOptions(timeout=0)) is None


async def test_dequeue_needing_a_new_connection_to_a_frozen_server_raises_within_its_timeout(
    server: RedisServer, make: Make
) -> None:
    backend = await make("redis-streams", visibility_timeout="1s", call_margin="1s")
    await backend.enqueue(Job(id="kept", payload=1))
    await backend.conn.client.connection_pool.disconnect()  # the next call connects anew
    await backend.conn.blocking_client.connection_pool.disconnect()
    with (
        anyio.fail_after(GUARD),
        server.frozen(),
        pytest.raises(OperationTimeoutError, match="call_margin"),
    ):
        await backend.dequeue_many(DequeueOptions(timeout=0.5, count=5))
    got = await backend.dequeue_many(DequeueOptions(timeout=5, count=5))
    assert [j.id for j in got] == ["kept"]


@pytest.mark.parametrize("type_", TYPES)
async def test_health_of_a_frozen_server_is_unhealthy_within_health_timeout(
    server: RedisServer, make: Make, type_: str
) -> None:
    backend = await make(type_, health_timeout="0.5s")
    assert (await backend.health()).status == HealthLevel.HEALTHY
    with anyio.fail_after(GUARD), server.frozen():
        status = await backend.health()
    assert status.status == HealthLevel.UNHEALTHY
    assert "health_timeout" in status.message


@pytest.mark.parametrize("type_", TYPES)
async def test_health_of_a_server_that_answers_slowly_is_degraded(
    server: RedisServer, make: Make, type_: str
) -> None:
    backend = await make(type_, health_timeout="10s", health_latency_threshold="100ms")
    server.pause()
    async with anyio.create_task_group() as tg:

        async def wake_up() -> None:
            await anyio.sleep(0.4)  # the PING waits at least this long
            server.resume()

        tg.start_soon(wake_up)
        with anyio.fail_after(GUARD):
            status = await backend.health()
    assert status.status == HealthLevel.DEGRADED, status
    assert status.latency_ms is not None
    assert status.latency_ms >= 400
    assert "health_latency_threshold" in status.message
    assert (await backend.health()).status == HealthLevel.HEALTHY, "fast again once it woke up"

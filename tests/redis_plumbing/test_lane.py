"""The lone-call lane (``queuestore/backends/_redis/lane.py``): a lone script call on a standalone
server is sent on a connection of the backend's own pool without redis-py's per-command
machinery, with the same outcome -- the pool's limit, a new connection after the server closed
one, the socket timeout (the connection dropped, the call's outcome then unknown and its effect
once), and redis-py's error classes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
import redis.asyncio as aredis

from queuestore import Job, OutcomeUnknownError
from queuestore.backends._redis.base import RedisBackendBase
from queuestore.backends._redis.lane import lane_for
from queuestore.backends._redis.pool import BoundedConnectionPool
from queuestore.testing import RedisServer, ServerFactory

from .conftest import Make, backend_maker

pytestmark = pytest.mark.anyio

TYPES = ["redis-lists", "redis-streams"]
GUARD = 15.0


@pytest.fixture
async def server(redis_server_factory: ServerFactory) -> RedisServer:
    return redis_server_factory()


@pytest.fixture
async def make(server: RedisServer) -> AsyncIterator[Make]:
    async with backend_maker(server.url, "lane", strict_keys=True, coalesce=False) as create:
        yield create
        server.resume()


def _pool(b: RedisBackendBase) -> BoundedConnectionPool:
    pool = b.conn.client.connection_pool
    assert isinstance(pool, BoundedConnectionPool)
    return pool


@pytest.mark.parametrize("type_", TYPES)
async def test_lone_calls_take_the_lane_and_give_their_connection_back(make: Make, type_: str) -> None:
    b = await make(type_)
    assert b.conn.lane is not None
    assert [await b.enqueue(Job(id=f"j{i}")) for i in range(20)] == [True] * 20
    assert await b.enqueue(Job(id="j3")) is False
    pool = _pool(b)
    assert (pool.checked_out, pool.idle) == (0, 1)  # one connection, reused by every call
    assert await b.length() == 20


@pytest.mark.parametrize("type_", TYPES)
async def test_the_pool_limit_holds_for_concurrent_lone_calls(make: Make, type_: str) -> None:
    b = await make(type_, max_connections=2)
    stored = []

    async def one(i: int) -> None:
        stored.append(await b.enqueue(Job(id=f"c{i}")))

    async with anyio.create_task_group() as tg:
        for i in range(30):
            tg.start_soon(one, i)
    pool = _pool(b)
    assert stored == [True] * 30
    assert pool.checked_out == 0
    assert pool.idle <= 2
    assert pool.waits > 0  # callers queued for one of the two connections
    assert await b.length() == 30


@pytest.mark.parametrize("type_", TYPES)
async def test_a_connection_the_server_closed_is_made_again(
    make: Make, server: RedisServer, type_: str
) -> None:
    b = await make(type_)
    assert await b.enqueue(Job(id="before")) is True
    admin = aredis.Redis.from_url(server.url)
    try:
        assert await admin.client_kill_filter(_type="normal", skipme=True) >= 1
    finally:
        await admin.aclose()
    assert await b.enqueue(Job(id="after")) is True
    assert await b.length() == 2


@pytest.mark.parametrize("type_", TYPES)
async def test_a_frozen_server_times_out_and_the_call_acts_once(
    make: Make, server: RedisServer, type_: str
) -> None:
    b = await make(type_, read_timeout="0.5s", write_timeout="0.5s", max_retries=0)
    assert await b.enqueue(Job(id="warm")) is True
    server.pause()
    with anyio.fail_after(GUARD), pytest.raises(OutcomeUnknownError):
        await b.enqueue(Job(id="frozen"))
    server.resume()
    assert _pool(b).checked_out == 0
    # the frozen call ran once when the server woke; the same job again is already there
    assert await b.enqueue(Job(id="frozen")) is False
    assert await b.length() == 2


@pytest.mark.parametrize("retries", [3, 0])
async def test_a_connection_closed_under_a_lone_call_is_a_lost_reply(make: Make, retries: int) -> None:
    """Closed after the lane found it connected and before it wrote (its health check failed
    and dropped it): the call is retried with its call id, or, with no retry allowed, its
    outcome is unknown -- never the transport's AttributeError."""
    b = await make("redis-lists", max_retries=retries)
    assert await b.enqueue(Job(id="warm")) is True
    conns = list(_pool(b)._available_connections)
    assert conns
    for conn in conns:

        async def closed_meanwhile(conn: aredis.Connection = conn) -> None:
            del conn.check_health  # once
            conn.health_check_interval = 0
            await conn.disconnect()

        conn.check_health = closed_meanwhile  # type: ignore[method-assign]
        conn.health_check_interval, conn.next_health_check = 1, 0.0
    if retries:
        assert await b.enqueue(Job(id="closed")) is True
        assert await b.length() == 2
    else:
        with anyio.fail_after(GUARD), pytest.raises(OutcomeUnknownError):
            await b.enqueue(Job(id="closed"))
        assert await b.length() == 1, "nothing was written before the connection closed"
    assert _pool(b).checked_out == 0


async def test_only_our_standalone_pool_gets_a_lane(server: RedisServer) -> None:
    plain = aredis.Redis.from_url(server.url)  # redis-py's own pool
    try:
        assert lane_for(plain) is None
    finally:
        await plain.aclose()

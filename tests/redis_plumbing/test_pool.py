"""The bounded pool (``max_connections`` + ``pool_timeout``): a free connection is a pop, an
exhausted pool makes callers wait in order, and ``pool_timeout`` still bounds that wait."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aredis
from redis import exceptions as rexc

from queuestore import BackendConfig
from queuestore.backends._redis.connection import acquire_connection
from queuestore.backends._redis.options import RedisBackendOptions
from queuestore.backends._redis.pool import BoundedConnectionPool
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio


async def test_pool_timeout_bounds_the_wait_for_a_connection(redis_server: RedisServer) -> None:
    opts = RedisBackendOptions(max_connections=2, pool_timeout=0.3)
    conn = acquire_connection(BackendConfig(type="redis-lists", url=redis_server.url), opts)
    try:
        pool = conn.client.connection_pool
        assert isinstance(pool, BoundedConnectionPool)
        assert isinstance(pool, aredis.ConnectionPool)
        held = [await pool.get_connection(), await pool.get_connection()]
        start = time.monotonic()
        with pytest.raises(rexc.ConnectionError, match="No connection available"):
            await conn.client.ping()
        assert 0.25 <= time.monotonic() - start < 2.0
        assert pool.waiting == 0

        # a caller waiting gets the first connection released, well before the timeout
        async def give_back() -> None:
            await asyncio.sleep(0.1)
            await pool.release(held.pop())

        task = asyncio.ensure_future(give_back())
        assert await conn.client.ping() is True
        await task
        await pool.release(held.pop())
        # many callers on two connections: all served, nothing left checked out or waiting
        assert all(await asyncio.gather(*(conn.client.ping() for _ in range(200))))
        assert (pool.checked_out, pool.waiting) == (0, 0)
        assert 1 <= pool.idle <= 2
    finally:
        await conn.release()


async def test_waiters_are_served_in_order_and_a_cancelled_one_passes_its_turn(
    redis_server: RedisServer,
) -> None:
    pool = BoundedConnectionPool(max_connections=1, timeout=5.0, host="127.0.0.1", port=redis_server.port)
    try:
        first = await pool.get_connection()
        order: list[int] = []

        async def take(i: int) -> None:
            c = await pool.get_connection()
            order.append(i)
            await pool.release(c)

        waiters = [asyncio.ensure_future(take(i)) for i in range(3)]
        cancelled = asyncio.ensure_future(take(99))
        await asyncio.sleep(0.05)
        cancelled.cancel()
        await pool.release(first)
        await asyncio.wait_for(asyncio.gather(*waiters), 5.0)
        assert order == [0, 1, 2]
        assert cancelled.cancelled()
        assert pool.waiting == 0
    finally:
        await pool.disconnect()

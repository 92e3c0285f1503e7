"""Fixtures of the fault tests: a :class:`~.proxy.FaultProxy` in front of the session's real
server, and redis-streams and redis-lists backends that talk through it (or straight to the
server)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from queuestore import BackendConfig
from queuestore.backends.redis_lists import RedisListsBackend, RedisListsFactory
from queuestore.backends.redis_streams import RedisStreamsBackend, RedisStreamsFactory

from .proxy import FaultProxy

StreamsMaker = Callable[..., Awaitable[RedisStreamsBackend]]
ListsMaker = Callable[..., Awaitable[RedisListsBackend]]


@pytest.fixture
async def proxy(redis_server: Any) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(redis_server.host, redis_server.port) as p:
        yield p


@pytest.fixture
async def streams(redis_server: Any, proxy: FaultProxy) -> AsyncIterator[StreamsMaker]:
    """``await streams(via_proxy=True, **options)``: a backend on one queue of its own per test;
    through the proxy it has a short ``read_timeout`` so a swallowed reply is retried fast."""
    made: list[RedisStreamsBackend] = []
    prefix = f"qs-flt-{uuid.uuid4().hex[:8]}:"

    async def make(via_proxy: bool = True, queue: str = "q", **options: Any) -> RedisStreamsBackend:
        opts: dict[str, Any] = {"key_prefix": prefix, "strict_keys": True}
        if via_proxy:
            opts["read_timeout"] = opts["write_timeout"] = 0.25
        opts.update(options)
        cfg = BackendConfig(
            type="redis-streams",
            name="faults",
            url=proxy.url if via_proxy else redis_server.url,
            queue=queue,
            options=opts,
        )
        backend = await RedisStreamsFactory().create(cfg)
        made.append(backend)
        return backend

    try:
        yield make
    finally:
        for b in made:
            await b.aclose()


@pytest.fixture
async def lists(redis_server: Any, proxy: FaultProxy) -> AsyncIterator[ListsMaker]:
    """``await lists(via_proxy=True, **options)``: a redis-lists backend on one queue of its own
    per test; through the proxy it has a short ``read_timeout`` so a swallowed reply is retried
    fast."""
    made: list[RedisListsBackend] = []
    prefix = f"qs-flt-{uuid.uuid4().hex[:8]}:"

    async def make(via_proxy: bool = True, queue: str = "q", **options: Any) -> RedisListsBackend:
        opts: dict[str, Any] = {"key_prefix": prefix, "strict_keys": True}
        if via_proxy:
            opts["read_timeout"] = opts["write_timeout"] = 0.25
        opts.update(options)
        cfg = BackendConfig(
            type="redis-lists",
            name="faults",
            url=proxy.url if via_proxy else redis_server.url,
            queue=queue,
            options=opts,
        )
        backend = await RedisListsFactory().create(cfg)
        made.append(backend)
        return backend

    try:
        yield make
    finally:
        for b in made:
            await b.aclose()

"""Fixtures of the redis-streams tests: backends on the session's real servers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from queuestore import BackendConfig
from queuestore.backends.redis_streams import RedisStreamsBackend, RedisStreamsFactory

Maker = Callable[..., Awaitable[RedisStreamsBackend]]


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}"


def config(url: str, queue: str, cluster_addrs: list[str] | None = None, **options: Any) -> BackendConfig:
    return BackendConfig(
        type="redis-streams",
        name="streams-test",
        url=url,
        queue=queue,
        cluster_mode=cluster_addrs is not None,
        cluster_addrs=cluster_addrs or [],
        options=options,
    )


async def _maker(url: str, cluster_addrs: list[str] | None) -> AsyncIterator[Maker]:
    made: list[RedisStreamsBackend] = []
    prefix = unique("qs-st") + ":"
    default_queue = unique("q")

    async def make(queue: str | None = None, **options: Any) -> RedisStreamsBackend:
        opts = {"key_prefix": prefix, "strict_keys": True, **options}
        cfg = config(url, queue or default_queue, cluster_addrs, **opts)
        backend = await RedisStreamsFactory().create(cfg)
        made.append(backend)
        return backend

    try:
        yield make
    finally:
        for b in made:
            await b.aclose()


@pytest.fixture
async def make(redis_server: Any) -> AsyncIterator[Maker]:
    """Backends on the standalone server; one queue per test unless named."""
    async for m in _maker(redis_server.url, None):
        yield m


@pytest.fixture
async def make_cluster(redis_cluster: Any) -> AsyncIterator[Maker]:
    """Backends on the 3-primary cluster."""
    async for m in _maker(redis_cluster.url, list(redis_cluster.startup_nodes)):
        yield m

"""Fixtures: open redis-lists backends (strict-keys on) on the session's servers.

``lists`` makes backends on the standalone ``redis_server``; ``cluster_lists`` on the
3-primary ``redis_cluster``. Each test gets its own ``key_prefix``; backends are closed
at teardown.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.crc import key_slot

from queuestore import BackendConfig
from queuestore.backends.redis_lists import RedisListsBackend, RedisListsFactory
from tests.servers import RedisCluster, RedisServer


def unique(stem: str = "q") -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}"


class Maker:
    """``await maker(queue=None, **options)`` -> an open backend (strict keys on)."""

    def __init__(self, url: str, cluster_addrs: list[str] | None = None) -> None:
        self.url = url
        self.cluster_addrs = cluster_addrs or []
        self.prefix = unique("qs-lists") + ":"
        self.queue = unique("q")
        self.created: list[RedisListsBackend] = []

    def config(self, queue: str | None = None, **options: Any) -> BackendConfig:
        return BackendConfig(
            type="redis-lists",
            name="lists-test",
            url=self.url,
            queue=queue or self.queue,
            cluster_mode=bool(self.cluster_addrs),
            cluster_addrs=self.cluster_addrs,
            options={"key_prefix": self.prefix, "strict_keys": True, **options},
        )

    async def __call__(self, queue: str | None = None, **options: Any) -> RedisListsBackend:
        backend = await RedisListsFactory().create(self.config(queue, **options))
        self.created.append(backend)
        return backend

    def base(self, queue: str) -> str:
        return f"{self.prefix}{{{queue}}}"

    async def aclose(self) -> None:
        for backend in self.created:
            await backend.aclose()


@pytest.fixture
async def lists(redis_server: RedisServer) -> AsyncIterator[Maker]:
    maker = Maker(redis_server.url)
    try:
        yield maker
    finally:
        await maker.aclose()


@pytest.fixture
async def cluster_lists(redis_cluster: RedisCluster) -> AsyncIterator[Maker]:
    maker = Maker(redis_cluster.url, list(redis_cluster.startup_nodes))
    try:
        yield maker
    finally:
        await maker.aclose()


def queues_on_distinct_nodes(cluster: RedisCluster, maker: Maker, n: int = 2) -> list[str]:
    """Queue names whose hash tags are owned by ``n`` different cluster nodes."""
    found: dict[int, str] = {}
    for _ in range(200):
        name = unique("q")
        port = cluster.node_for_slot(key_slot(maker.base(name).encode())).port
        found.setdefault(port, name)
        if len(found) == n:
            return list(found.values())
    raise AssertionError("could not find queues on distinct nodes")

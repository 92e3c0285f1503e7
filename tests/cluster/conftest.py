"""Fixtures of the Redis Cluster fault tests: backends of any Redis type on the session's
real 3-primary cluster (or on a per-test cluster that a test may break)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.crc import key_slot

from queuestore import BackendConfig, QueueBackend, default_registry
from queuestore.testing import RedisCluster


def unique(stem: str = "q") -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}"


class ClusterMaker:
    """``await maker(type, queue, **options)`` -> an open backend on ``cluster`` (strict keys on)."""

    def __init__(self, cluster: RedisCluster) -> None:
        self.cluster = cluster
        self.prefix = unique("qs-cl") + ":"
        self.created: list[QueueBackend] = []

    def config(self, type_: str, queue: str, **options: Any) -> BackendConfig:
        return BackendConfig(
            type=type_,
            name=f"{type_}-cluster",
            url=self.cluster.url,
            queue=queue,
            cluster_mode=True,
            cluster_addrs=list(self.cluster.startup_nodes),
            options={"key_prefix": self.prefix, "strict_keys": True, **options},
        )

    async def __call__(self, type_: str, queue: str, **options: Any) -> QueueBackend:
        backend = await default_registry().create(type_, self.config(type_, queue, **options))
        self.created.append(backend)
        return backend

    def port_of(self, queue: str) -> int:
        """The port of the primary that owns ``queue``'s hash tag."""
        return self.cluster.node_for_slot(key_slot(f"{self.prefix}{{{queue}}}".encode())).port

    def queues_on_distinct_nodes(self, n: int = 2) -> list[str]:
        """Queue names whose hash tags are owned by ``n`` different primaries."""
        found: dict[int, str] = {}
        for _ in range(500):
            name = unique()
            found.setdefault(self.port_of(name), name)
            if len(found) == n:
                return list(found.values())
        raise AssertionError("could not find queues on distinct nodes")

    async def aclose(self) -> None:
        for backend in self.created:
            await backend.aclose()


@pytest.fixture
async def on_cluster(redis_cluster: RedisCluster) -> AsyncIterator[ClusterMaker]:
    maker = ClusterMaker(redis_cluster)
    try:
        yield maker
    finally:
        await maker.aclose()

"""Capabilities are the truth about the connected server, for both layouts of a dialect type:
persistence only with AOF or RDB snapshots, clustering only on a real cluster."""

from __future__ import annotations

from typing import Any

import pytest

from queuestore import default_registry
from tests.servers import RedisCluster, ServerFactory

from .conftest import Maker, config

pytestmark = pytest.mark.anyio

KINDS = [("keydb", "lists"), ("keydb", "streams"), ("dragonfly", "lists"), ("dragonfly", "streams")]


@pytest.mark.parametrize(("backend_type", "layout"), KINDS)
async def test_persistence_follows_the_server(
    make: Maker, redis_server_factory: ServerFactory, backend_type: str, layout: str
) -> None:
    servers: list[tuple[dict[str, Any], bool]] = [
        ({}, False),  # neither AOF nor RDB (the fixtures' default: save "")
        ({"appendonly": True}, True),
        ({"extra_args": ["--save", "3600", "1"]}, True),  # RDB only; two args: KeyDB reads "3600 1" as none
    ]
    for kwargs, persistent in servers:
        server = redis_server_factory(**kwargs)
        backend = await make(backend_type, server.url, layout=layout)
        caps = backend.capabilities()
        assert caps.persistence is persistent, kwargs
        assert caps.clustering is False
        assert caps.batch_operations
        health = await backend.health()
        assert health.details["persistence"] == str(persistent)
        assert ("warning" in health.details) is not persistent


@pytest.mark.parametrize(("backend_type", "layout"), [("keydb", "streams"), ("dragonfly", "lists")])
async def test_clustering_only_on_a_cluster(
    redis_cluster: RedisCluster, backend_type: str, layout: str
) -> None:
    cfg = config(backend_type, redis_cluster.url, layout=layout)
    cfg.cluster_mode, cfg.cluster_addrs = True, list(redis_cluster.startup_nodes)
    backend = await default_registry().create(backend_type, cfg)
    try:
        assert backend.capabilities().clustering is True
        assert (await backend.health()).server.endswith("(cluster)")  # type: ignore[union-attr]
    finally:
        await backend.aclose()

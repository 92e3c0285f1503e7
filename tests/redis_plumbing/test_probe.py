"""The server probe on real servers: kind, version, cluster, persistence, script header."""

from __future__ import annotations

import pytest
import redis.asyncio as aredis
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncCluster

from queuestore.backends._redis.probe import classify_info, probe_server
from queuestore.backends._redis.scripts import ScriptHeader
from tests.servers import RedisCluster, RedisServer

pytestmark = pytest.mark.anyio


async def test_probe_standalone(redis_server: RedisServer, aof_redis_server: RedisServer) -> None:
    for server, persistent in ((redis_server, False), (aof_redis_server, True)):
        client = aredis.Redis.from_url(server.url)
        try:
            info = await probe_server(client)
        finally:
            await client.aclose()
        assert info.kind == "redis"
        assert info.version.startswith("7")
        assert not info.cluster
        assert info.persistence is persistent
        assert info.maxmemory_policy == "noeviction"
        assert info.script_header is ScriptHeader.REDIS7
        assert info.has_xautoclaim
    assert info.appendfsync == "always"


async def test_probe_cluster(redis_cluster: RedisCluster) -> None:
    client = AsyncCluster(startup_nodes=[ClusterNode(n.host, n.port) for n in redis_cluster.nodes])
    try:
        info = await probe_server(client)
    finally:
        await client.aclose()
    assert info.cluster
    assert info.label.endswith("(cluster)")


def test_classify_info() -> None:
    assert classify_info({"dragonfly_version": "df-v1.2.3"}) == ("dragonfly", "1.2.3")
    assert classify_info({"server_name": "valkey", "valkey_version": "8.0.1"}) == ("valkey", "8.0.1")
    assert classify_info({"redis_version": "6.3.4", "server_threads": 2}) == ("keydb", "6.3.4")
    assert classify_info({"redis_version": "7.0.15"}) == ("redis", "7.0.15")

"""Redis Cluster faults: a cluster backend that cannot connect raises a queuestore error (not
redis-py's ``RedisClusterException``) and leaves no open node behind; and a dead primary makes
the queues of its slots unhealthy -- health asks the node that owns the queue's slot."""

from __future__ import annotations

import gc
import uuid
import warnings

import pytest
from redis.crc import key_slot

import queuestore as qs
from queuestore.testing import RedisCluster, RedisServer, free_port

pytestmark = pytest.mark.anyio

TYPES = ["redis-streams", "redis-lists"]


def _config(type_: str, addr: str) -> qs.StorageConfig:
    return qs.load_config(
        f"backends: {{c: {{type: {type_}, cluster_mode: true, cluster_addrs: ['{addr}']}}}}\n"
        "queues: {a: {backend: c}}\n"
    ).apply_defaults()


def _unclosed(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if "Unclosed" in str(w.message)]


@pytest.mark.parametrize("type_", TYPES)
async def test_cluster_mode_against_a_plain_server_is_a_configuration_error(
    redis_server: RedisServer, type_: str
) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(qs.ConfigurationError) as info:
            await qs.BackendManager.from_config(_config(type_, redis_server.address))
        gc.collect()
    assert info.value.field.endswith("cluster_mode")
    assert "not a Redis Cluster" in str(info.value)
    assert not _unclosed(caught)


@pytest.mark.parametrize("type_", TYPES)
async def test_an_unreachable_cluster_is_a_retryable_connection_failure(type_: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(qs.ConnectionFailedError) as info:
            await qs.BackendManager.from_config(_config(type_, f"127.0.0.1:{free_port()}"))
        gc.collect()
    assert qs.is_retryable(info.value)
    assert qs.error_code(info.value) == "CONNECTION_FAILED"
    assert not _unclosed(caught)


@pytest.mark.parametrize("type_", TYPES)
async def test_health_check_reports_the_queue_whose_primary_died_unhealthy(type_: str) -> None:
    prefix = f"qs-kill-{uuid.uuid4().hex[:6]}:"
    with RedisCluster() as cluster:
        # two queues whose hash tags live on different primaries
        owners: dict[int, str] = {}
        while len(owners) < 2:
            name = f"q-{uuid.uuid4().hex[:8]}"
            owners.setdefault(cluster.node_for_slot(key_slot(f"{prefix}{{{name}}}".encode())).port, name)
        (dead_port, doomed), (_, spared) = owners.items()
        manager = qs.BackendManager(qs.default_registry())
        async with manager:
            for queue in (doomed, spared):
                await manager.add_backend(
                    queue,
                    qs.BackendConfig(
                        type=type_,
                        name=f"{type_}-cluster",
                        queue=queue,
                        cluster_mode=True,
                        cluster_addrs=list(cluster.startup_nodes),
                        options={"key_prefix": prefix, "strict_keys": True, "health_timeout": "2s"},
                    ),
                )
                await manager.get_backend(queue).enqueue(qs.Job(payload=queue))
            before = await manager.health_check()
            assert {h.status for h in before.values()} == {qs.HealthLevel.HEALTHY}
            next(node for node in cluster.nodes if node.port == dead_port).kill()
            after = await manager.health_check()
            assert after[doomed].status == qs.HealthLevel.UNHEALTHY, after[doomed]
            assert after[spared].status == qs.HealthLevel.HEALTHY, after[spared]

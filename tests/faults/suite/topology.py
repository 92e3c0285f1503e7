"""Where a fault run's queue lives: a fresh standalone server, or a fresh 3-primary Redis
Cluster, with a fault proxy in front of each node when the scenario needs one."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from typing import Any

import anyio
import anyio.to_thread
import redis.asyncio as aredis
from redis.crc import key_slot

from queuestore import QueueBackend
from queuestore.backends.redis_lists.layout import ListsLayout
from queuestore.testing import RedisCluster, RedisServer, ServerFactory

from ..proxy import FaultProxy

__all__ = ["CLUSTER", "owner_of", "proxy_each_node", "servers_for", "slot_key"]

#: the suffix of a backend entry that runs on a 3-primary Redis Cluster
CLUSTER = "@cluster"
#: how long the nodes may take to agree on the proxies' addresses
ANNOUNCE_TIMEOUT = 30.0


async def servers_for(
    backend_id: str, aof: bool, servers: ServerFactory, stack: AsyncExitStack
) -> tuple[RedisServer | None, RedisCluster | None]:
    """The run's standalone server, or its Redis Cluster (stopped when ``stack`` closes); none
    for the in-process backend. ``aof``: ``appendonly yes`` with ``appendfsync always``."""
    if backend_id == "memory":
        return None, None
    if not backend_id.endswith(CLUSTER):
        return servers(appendonly=aof, appendfsync="always"), None
    cluster = RedisCluster(appendonly=aof, appendfsync="always")
    stack.callback(cluster.stop)
    await anyio.to_thread.run_sync(cluster.start)
    return None, cluster


async def proxy_each_node(cluster: RedisCluster, stack: AsyncExitStack) -> dict[int, FaultProxy]:
    """A :class:`FaultProxy` in front of each node, which the node announces as its address
    (``cluster-announce-port``; its bus stays where it is): a cluster client that starts from
    the proxies learns only their addresses from ``CLUSTER SLOTS`` and redirections, so every
    command goes through one. Returns the proxies by their node's port, once every node's slot
    map names only proxies.

    Raises:
        TimeoutError: the nodes did not agree within :data:`ANNOUNCE_TIMEOUT` seconds.
    """
    proxies = {
        node.port: await stack.enter_async_context(FaultProxy(node.host, node.port)) for node in cluster.nodes
    }
    for node in cluster.nodes:
        async with aredis.Redis(host=node.host, port=node.port) as admin:
            await admin.config_set("cluster-announce-bus-port", node.port + 10000)
            await admin.config_set("cluster-announce-port", proxies[node.port].port)
    wanted = {p.port for p in proxies.values()}
    deadline = time.monotonic() + ANNOUNCE_TIMEOUT
    while not all([await _slot_ports(node) <= wanted for node in cluster.nodes]):
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the cluster's nodes did not announce their proxies within {ANNOUNCE_TIMEOUT}s"
            )
        await anyio.sleep(0.1)
    return proxies


async def _slot_ports(node: RedisServer) -> set[int]:
    async with aredis.Redis(host=node.host, port=node.port) as admin:
        slots: Any = await admin.execute_command("CLUSTER", "SLOTS")
    return {int(s[2][1]) for s in slots}


async def owner_of(cluster: RedisCluster, key: str) -> RedisServer:
    """The node that owns ``key``'s slot, found by node id (the addresses in the slot map may
    be the proxies').

    Raises:
        LookupError: no node owns it.
    """
    slot = key_slot(key.encode())
    first = cluster.nodes[0]
    async with aredis.Redis(host=first.host, port=first.port) as admin:
        slots: Any = await admin.execute_command("CLUSTER", "SLOTS")
    owner_id = next((s[2][2] for s in slots if int(s[0]) <= slot <= int(s[1])), None)
    for node in cluster.nodes:
        async with aredis.Redis(host=node.host, port=node.port) as admin:
            if await admin.execute_command("CLUSTER", "MYID") == owner_id:
                return node
    raise LookupError(f"no node of the cluster owns slot {slot}")


def slot_key(backend: QueueBackend) -> str:
    """A key of the backend's queue (they all share one hash slot)."""
    keys = getattr(backend, "skeys", None) or getattr(backend, "layout", None)
    return str(keys.keys.key("meta") if isinstance(keys, ListsLayout) else keys.stream)  # type: ignore[union-attr]

"""The health check of the Redis backends: a bounded PING to the node that owns the queue,
then the data-safety prerequisites the probe found at open.

The level follows from what was measured, never from the mere fact that PING answered:

* ``unhealthy``: no answer within ``health_timeout`` (a frozen or unreachable server, or on a
  cluster the dead primary of the queue's slot), or an error;
* ``degraded``: PING answered slower than ``health_latency_threshold``, or the server may
  evict keys (``maxmemory-policy`` other than ``noeviction``);
* ``healthy`` otherwise.

On a Redis Cluster the PING goes to the primary that owns the queue's hash slot (from the
client's slot map): any other node answering says nothing about this queue.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from queuestore._models import HealthLevel, HealthStatus
from queuestore.backends._redis.connection import RedisConnection
from queuestore.backends._redis.errors import translating
from queuestore.errors import QueueStoreError

__all__ = ["ping_owner", "queue_health"]


async def ping_owner(conn: RedisConnection, key: str) -> None:
    """PING the server that holds ``key`` (on a cluster: the primary owning its slot).

    Raises:
        redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError:
            the caller translates them.
    """
    client: Any = conn.client
    if not conn.cluster:
        await client.ping()
        return
    await client.initialize()  # a no-op once the client knows the slot map
    await client.execute_command("PING", target_nodes=client.get_node_from_key(key))


async def queue_health(
    backend: str,
    conn: RedisConnection,
    key: str,
    *,
    limit: float,
    latency_threshold: float,
) -> tuple[HealthStatus | None, float, list[str]]:
    """Time a bounded PING of the queue's server.

    Args:
        backend: the backend's name (for messages).
        conn: its connection.
        key: one key of the queue (picks the node on a cluster).
        limit: longest wait for the answer (``health_timeout``).
        latency_threshold: slower answers make the queue ``degraded``.

    Returns:
        ``(status, latency_ms, problems)``: ``status`` is the final UNHEALTHY report when the
        PING failed or did not answer in time (else None); ``problems`` says what degrades it.
    """
    start = time.perf_counter()
    try:
        with anyio.move_on_after(limit) as scope, translating(backend, "health"):
            await ping_owner(conn, key)
    except QueueStoreError as exc:
        return HealthStatus(status=HealthLevel.UNHEALTHY, message=str(exc)), 0.0, []
    latency_ms = (time.perf_counter() - start) * 1000.0
    if scope.cancelled_caught:
        message = f"backend {backend!r}: no answer to PING within {limit:g}s (health_timeout)"
        return HealthStatus(status=HealthLevel.UNHEALTHY, message=message), latency_ms, []
    problems: list[str] = []
    if latency_ms > latency_threshold * 1000.0:
        problems.append(
            f"PING took {latency_ms:.0f} ms, above health_latency_threshold "
            f"({latency_threshold * 1000.0:.0f} ms): the server is overloaded, stalling or far away"
        )
    return None, latency_ms, problems

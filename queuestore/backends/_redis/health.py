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
from collections.abc import Sequence
from typing import Any

import anyio

from queuestore._models import HealthLevel, HealthStatus
from queuestore.backends._redis.connection import RedisConnection
from queuestore.backends._redis.errors import translating
from queuestore.backends._redis.options import RedisBackendOptions
from queuestore.backends._redis.probe import ServerInfo
from queuestore.backends._redis.scripts import ScriptSet
from queuestore.errors import QueueStoreError

__all__ = ["backend_health", "ping_owner", "queue_health"]


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


async def backend_health(
    backend: str,
    conn: RedisConnection,
    server: ServerInfo,
    key: str,
    *,
    options: RedisBackendOptions,
    script_set: ScriptSet,
    configured_type: str,
    waits: Sequence[Sequence[Any]],
) -> HealthStatus:
    """An open backend's health: :func:`queue_health`, then the data-safety prerequisites the
    probe found at open (``server``), and what the backend runs (script header and reloads,
    the durability waits) in ``details``. Never raises."""
    failed, latency, problems = await queue_health(
        backend,
        conn,
        key,
        limit=float(options.health_timeout),
        latency_threshold=float(options.health_latency_threshold),
    )
    if failed is not None:
        failed.server = server.label
        return failed
    if server.maxmemory_policy not in (None, "noeviction"):
        problems.append(
            f"maxmemory-policy is {server.maxmemory_policy!r}: under memory pressure the server may "
            "evict queue keys and silently lose jobs; set it to noeviction"
        )
    details = {
        "server": server.label,
        "maxmemory_policy": str(server.maxmemory_policy),
        "persistence": str(server.persistence),
        "appendfsync": str(server.appendfsync),
        "script_reloads": str(script_set.reloads),
        "script_header": str(script_set.header),
        "configured_type": configured_type,
        "wait_for": " ".join(" ".join(str(a) for a in w[:2]) for w in waits) or "none",
        "latency_threshold_ms": f"{float(options.health_latency_threshold) * 1000.0:g}",
    }
    if server.persistence is False:
        details["warning"] = "persistence is off (no AOF, no RDB): a server restart loses every job"
    status = HealthLevel.DEGRADED if problems else HealthLevel.HEALTHY
    return HealthStatus(
        status=status, message="; ".join(problems), latency_ms=latency, server=server.label, details=details
    )

"""Identify the server from INFO and probe what the backends depend on.

Probe, don't parse versions (server-compat.md, rule 7): the server kind comes
from INFO's identity fields; features are asked for with COMMAND INFO.
"""

from __future__ import annotations

from typing import Any

import msgspec
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from queuestore.backends._redis.connection import RedisClient
from queuestore.backends._redis.scripts import ScriptHeader

__all__ = ["ServerInfo", "classify_info", "probe_server"]


class ServerInfo(msgspec.Struct, kw_only=True, frozen=True):
    """What the connected server is and can do (cached per connection).

    ``persistence`` is True when AOF is on or RDB save points are configured,
    None when the server would not say (CONFIG refused on managed services).
    """

    kind: str  # "redis" | "valkey" | "keydb" | "dragonfly"
    version: str
    cluster: bool = False
    maxmemory_policy: str | None = None
    aof_enabled: bool | None = None
    rdb_enabled: bool | None = None
    appendfsync: str | None = None
    has_waitaof: bool = False
    has_client_no_evict: bool = False
    has_xautoclaim: bool = True
    script_header: ScriptHeader = ScriptHeader.NONE

    @property
    def persistence(self) -> bool | None:
        """True with AOF or RDB snapshots, False with neither, None if unknown."""
        if self.aof_enabled or self.rdb_enabled:
            return True
        if self.aof_enabled is None and self.rdb_enabled is None:
            return None
        return False

    @property
    def label(self) -> str:
        """e.g. ``"redis 7.0.15 (cluster)"``."""
        return f"{self.kind} {self.version}" + (" (cluster)" if self.cluster else "")


def _major(version: str) -> int:
    try:
        return int(version.split(".", 1)[0])
    except ValueError:
        return 0


def classify_info(info: dict[str, Any]) -> tuple[str, str]:
    """Return ``(kind, version)`` from a parsed INFO mapping."""
    if "dragonfly_version" in info:
        return "dragonfly", str(info["dragonfly_version"]).lstrip("df-v")
    if str(info.get("server_name", "")).lower() == "valkey" or "valkey_version" in info:
        return "valkey", str(info.get("valkey_version", info.get("redis_version", "")))
    if any(k in info for k in ("server_threads", "mvcc_depth", "storage_provider", "active_replica")):
        return "keydb", str(info.get("redis_version", ""))
    return "redis", str(info.get("redis_version", ""))


async def _command_exists(client: RedisClient, name: str, node: Any) -> bool:
    try:
        if node is not None:
            reply = await client.execute_command("COMMAND", "INFO", name, target_nodes=node)
        else:
            reply = await client.execute_command("COMMAND", "INFO", name)
    except (RedisError, TypeError, IndexError):  # redis-py's COMMAND parser chokes on a nil entry
        return False
    if isinstance(reply, dict):
        return any(v for v in reply.values())
    return bool(reply) and any(r for r in reply)


async def probe_server(client: RedisClient) -> ServerInfo:
    """Ask the server (one node of a cluster) what it is.

    Raises:
        redis.exceptions.RedisError: the caller translates it.
    """
    node = None
    if isinstance(client, RedisCluster):
        await client.initialize()  # learn the slot map; before it there is no default node
        node = client.get_default_node()
    kw: dict[str, Any] = {"target_nodes": node} if node is not None else {}
    info: dict[str, Any] = await client.execute_command("INFO", "everything", **kw)
    kind, version = classify_info(info)
    cluster = bool(int(info.get("cluster_enabled", 0) or 0))
    rdb: bool | None = None
    fsync: str | None = None
    try:
        save = await client.execute_command("CONFIG", "GET", "save", **kw)
        if isinstance(save, dict):
            raw = save.get(b"save", save.get("save", b""))
            rdb = bool(raw.decode() if isinstance(raw, bytes) else raw)
        fs = await client.execute_command("CONFIG", "GET", "appendfsync", **kw)
        if isinstance(fs, dict):
            v = fs.get(b"appendfsync", fs.get("appendfsync"))
            fsync = v.decode() if isinstance(v, bytes) else v
    except RedisError:
        pass
    aof = info.get("aof_enabled")
    header = ScriptHeader.NONE
    if kind in ("redis", "valkey") and _major(version) >= 7:
        header = ScriptHeader.REDIS7
    elif kind == "dragonfly":
        header = ScriptHeader.DRAGONFLY
    policy = info.get("maxmemory_policy")
    return ServerInfo(
        kind=kind,
        version=version,
        cluster=cluster,
        maxmemory_policy=str(policy) if policy is not None else None,
        aof_enabled=bool(int(aof)) if aof is not None else None,
        rdb_enabled=rdb,
        appendfsync=fsync,
        has_waitaof=await _command_exists(client, "waitaof", node),
        has_client_no_evict=await _command_exists(client, "client|no-evict", node),
        has_xautoclaim=await _command_exists(client, "xautoclaim", node),
        script_header=header,
    )

"""Identify the server from INFO and probe what the backends depend on.

Probe, don't parse versions (server-compat.md, rule 7): the server kind comes
from INFO's identity fields; features are asked for with COMMAND INFO, and the
stream behaviours that differ between servers (XAUTOCLAIM's reply shape, the
``lag`` field of XINFO GROUPS) are observed with one atomic script on a
throw-away key that exists only while that script runs.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError

from queuestore.backends._redis.connection import RedisClient
from queuestore.backends._redis.scripts import ScriptHeader

__all__ = ["ServerInfo", "classify_info", "parse_info_text", "probe_server", "script_header_for"]

#: One atomic script: make a stream with one delivered-then-deleted entry, read XINFO
#: GROUPS and XAUTOCLAIM's reply for it, delete the key. Returns {lag field?, reply length}
#: (reply length 3: Redis 7 / Valkey / Dragonfly shape; 2: KeyDB's; 0: no XAUTOCLAIM).
_STREAM_PROBE = """
local k = KEYS[1]
redis.call("DEL", k)
local id = redis.call("XADD", k, "*", "f", "v")
redis.call("XGROUP", "CREATE", k, "g", "0")
redis.call("XREADGROUP", "GROUP", "g", "c", "COUNT", 1, "STREAMS", k, ">")
local lag = 0
for _, g in ipairs(redis.call("XINFO", "GROUPS", k)) do
  for i = 1, #g, 2 do if g[i] == "lag" then lag = 1 end end
end
redis.call("XDEL", k, id)
local ok, reply = pcall(redis.call, "XAUTOCLAIM", k, "g", "c", 0, "0-0")
redis.call("DEL", k)
local shape = 0
if ok and type(reply) == "table" and reply.err == nil then shape = #reply end
return {lag, shape}
"""


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
    has_wait: bool = True
    #: XAUTOCLAIM reply length: 3 (deleted ids listed), 2 (KeyDB: nil in place), 0 unknown
    xautoclaim_shape: int = 3
    #: XINFO GROUPS reports ``lag`` / ``entries-read`` (None: not probed)
    has_xinfo_lag: bool | None = None

    @property
    def persistence(self) -> bool | None:
        """True with AOF or RDB snapshots, False with neither, None if unknown."""
        if self.aof_enabled or self.rdb_enabled:
            return True
        if self.aof_enabled is None and self.rdb_enabled is None:
            return None
        return False

    @property
    def blocking_timeouts_safe(self) -> bool:
        """Whether a blocking command with a server-side timeout leaves the server sound.

        False on KeyDB: a client that returns before its timeout (woken, or gone) stays in
        KeyDB's table of blocked-client timeouts, and at that deadline the server locks the
        freed client, which hangs it once the memory is reused (see ``docs/servers.md``).
        """
        return self.kind != "keydb"

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


def script_header_for(kind: str, version: str) -> ScriptHeader:
    """The script header a server kind understands (server-compat.md, rule 5).

    ``#!lua flags=`` on Redis / Valkey 7+; Dragonfly's own ``--!df``; none on
    KeyDB and on Redis < 7 (a shebang is a compile error there).
    """
    if kind in ("redis", "valkey") and _major(version) >= 7:
        return ScriptHeader.REDIS7
    if kind == "dragonfly":
        return ScriptHeader.DRAGONFLY
    return ScriptHeader.NONE


def parse_info_text(text: str) -> dict[str, Any]:
    """Parse INFO's text reply (e.g. recorded from a server): ``field: value`` with numbers as numbers."""
    out: dict[str, Any] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if not sep or key.startswith("#"):
            continue
        for conv in (int, float):
            try:
                out[key] = conv(value)
                break
            except ValueError:
                continue
        else:
            out[key] = value
    return out


async def _stream_probe(client: RedisClient) -> tuple[bool | None, int | None]:
    """``(has XINFO lag, XAUTOCLAIM reply length)``; ``(None, None)`` when the script is refused."""
    key = f"queuestore:probe:{{{uuid.uuid4().hex}}}"
    try:
        lag, shape = await client.execute_command("EVAL", _STREAM_PROBE, 1, key)
    except (RedisError, ValueError, TypeError):  # OOM, read-only, ACL: fall back to the defaults
        return None, None
    return bool(int(lag)), int(shape)


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


def _as_dict(reply: Any) -> Any:
    """A CONFIG GET reply as a dict (redis-py before 5.1 leaves it as flat name/value pairs)."""
    if isinstance(reply, list | tuple):
        return dict(zip(reply[::2], reply[1::2], strict=False))
    return reply


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
        save = _as_dict(await client.execute_command("CONFIG", "GET", "save", **kw))
        if isinstance(save, dict):
            raw = save.get(b"save", save.get("save", b""))
            rdb = bool(raw.decode() if isinstance(raw, bytes) else raw)
        fs = _as_dict(await client.execute_command("CONFIG", "GET", "appendfsync", **kw))
        if isinstance(fs, dict):
            v = fs.get(b"appendfsync", fs.get("appendfsync"))
            fsync = v.decode() if isinstance(v, bytes) else v
    except RedisError:
        pass
    aof = info.get("aof_enabled")
    policy = info.get("maxmemory_policy")
    has_xautoclaim = await _command_exists(client, "xautoclaim", node)
    lag, shape = await _stream_probe(client)
    if shape is None:  # not observed: what the server kind is known to reply
        shape = 0 if not has_xautoclaim else (2 if kind == "keydb" else 3)
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
        has_xautoclaim=has_xautoclaim,
        script_header=script_header_for(kind, version),
        has_wait=await _command_exists(client, "wait", node),
        xautoclaim_shape=shape,
        has_xinfo_lag=lag,
    )

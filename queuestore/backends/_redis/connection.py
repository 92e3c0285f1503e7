"""Connections: pooled clients shared between backends with identical settings, standalone
or Redis Cluster. The settings (options, aliases, URL query options, checks) are in
:mod:`.settings`, URLs are parsed by :mod:`queuestore._url`, the pool is :mod:`.pool`,
TLS connections are :mod:`.tls`.

The Redis backends run on asyncio only: creating one under another event loop (trio)
fails at once with :class:`~queuestore.errors.UnsupportedOperationError`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import redis.asyncio as aredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from queuestore._durations import Seconds
from queuestore._models import BackendConfig, ConnectionPoolStats
from queuestore._url import ServerURL, parse_server_url, split_host_port
from queuestore.backends._redis.lane import Lane, lane_for
from queuestore.backends._redis.packing import PackedConnection, PackedUnixConnection
from queuestore.backends._redis.pool import BoundedConnectionPool
from queuestore.backends._redis.settings import (
    RedisConnectionOptions,
    check_connection_config,
    effective_options,
    resolve_aliases,
)
from queuestore.backends._redis.tls import TLSConnection
from queuestore.errors import UnsupportedOperationError

__all__ = [
    "RedisClient",
    "RedisConnection",
    "RedisConnectionOptions",
    "acquire_connection",
    "check_connection_config",
    "effective_options",
    "resolve_aliases",
]

RedisClient = aredis.Redis | RedisCluster


def _client_kwargs(
    config: BackendConfig, options: RedisConnectionOptions, parsed: ServerURL | None
) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "socket_connect_timeout": float(options.conn_timeout),
        "socket_timeout": float(max(options.read_timeout, options.write_timeout)),
        "health_check_interval": float(options.idle_timeout),
        # only a broken connection is retried: a timed-out command's outcome is unknown, and a
        # connect that timed out would time out again (a TLS client on a plain-text port)
        "retry": Retry(
            ExponentialBackoff(cap=1.0, base=0.05),
            options.max_retries,
            supported_errors=(RedisConnectionError,),
        ),
        "retry_on_error": [RedisConnectionError],
        "decode_responses": False,
    }
    username = options.username or (parsed.username if parsed else None)
    password = options.password or (parsed.password if parsed else None)
    if username:
        kw["username"] = username
    if password:
        kw["password"] = password
    tls = options.tls or (parsed is not None and parsed.scheme == "rediss")
    if tls:
        kw["ssl"] = True
        kw["ssl_ca_certs"] = options.tls_ca_file
        kw["ssl_certfile"] = options.tls_cert_file
        kw["ssl_keyfile"] = options.tls_key_file
        kw["ssl_cert_reqs"] = "required" if options.tls_verify else "none"
        check = options.tls_check_hostname
        kw["ssl_check_hostname"] = options.tls_verify if check is None else check
    return kw


def _build_client(
    config: BackendConfig,
    options: RedisConnectionOptions,
    *,
    blocking: bool = False,
    extra_timeout: float = 0.0,
) -> tuple[RedisClient, int]:
    parsed = parse_server_url(config.url) if config.url else None
    options = effective_options(config, options)
    kw = _client_kwargs(config, options, parsed)
    if blocking:
        kw["socket_timeout"] = float(options.block_timeout) + kw["socket_timeout"] + 0.5
    elif extra_timeout:
        kw["socket_timeout"] = extra_timeout + kw["socket_timeout"] + 0.5
    if config.cluster_mode:
        addrs = [split_host_port(a, "cluster_addrs") for a in config.cluster_addrs]
        if not addrs and parsed is not None:
            addrs = [(parsed.host, parsed.port)]
        nodes = [ClusterNode(h, p) for h, p in addrs]
        kw.pop("retry_on_error")
        cluster = RedisCluster(
            startup_nodes=nodes, max_connections=options.max_connections, require_full_coverage=True, **kw
        )
        _pack_cluster_connections(cluster)
        return cluster, 0
    assert parsed is not None
    db = config.database if config.database is not None else (parsed.db or 0)
    if parsed.scheme == "unix":
        conn_kw = {k: v for k, v in kw.items() if not k.startswith("ssl")}
        conn_kw.pop("socket_connect_timeout", None)
        pool = BoundedConnectionPool(
            max_connections=options.max_connections,
            timeout=float(options.pool_timeout),
            connection_class=PackedUnixConnection,
            path=parsed.path,
            db=db,
            **conn_kw,
        )
    else:
        conn_class: type[aredis.Connection] = PackedConnection
        if kw.pop("ssl", False):
            conn_class = TLSConnection
        else:
            kw = {k: v for k, v in kw.items() if not k.startswith("ssl")}
        pool = BoundedConnectionPool(
            max_connections=options.max_connections,
            timeout=float(options.pool_timeout),
            connection_class=conn_class,
            host=parsed.host,
            port=parsed.port,
            db=db,
            **kw,
        )
    return aredis.Redis(connection_pool=pool), db


def _pack_cluster_connections(cluster: RedisCluster) -> None:
    """Give a new cluster client's connections our packing (TLS ones our TLS class too).

    The cluster client picks its connection class itself; it builds every node it learns of
    from the dict :meth:`RedisCluster.get_connection_kwargs` returns, and its startup nodes
    were built before this: both are given the class here, before the first command.
    """
    kwargs = cluster.get_connection_kwargs()
    chosen = kwargs.get("connection_class")
    tls = isinstance(chosen, type) and issubclass(chosen, aredis.SSLConnection)
    packed: type[aredis.Connection] = TLSConnection if tls else PackedConnection
    kwargs["connection_class"] = packed
    for node in cluster.nodes_manager.startup_nodes.values():
        node.connection_class = packed


async def _close_client(client: RedisClient) -> None:
    """Close a client and the sockets of its pool (a client given a pool does not own it)."""
    try:
        await client.aclose()
    finally:
        if isinstance(client, aredis.Redis):
            await client.connection_pool.disconnect()


class RedisConnection:
    """One pooled client, shared (ref-counted) by backends with identical settings.

    Attributes:
        client: the redis.asyncio client (``Redis`` or ``RedisCluster``).
        cluster: True for a Redis Cluster client.
        max_connections: the configured pool size.
        lane: lone script calls without redis-py's per-command machinery (see :mod:`.lane`),
            or None (a cluster client): they take the ordinary path.
    """

    def __init__(self, key: tuple[Any, ...], config: BackendConfig, options: RedisConnectionOptions) -> None:
        self._key = key
        self._config = config
        self._options = options
        self.client, _ = _build_client(config, options)
        self.cluster = config.cluster_mode
        self.lane: Lane | None = lane_for(self.client)
        self.max_connections = effective_options(config, options).max_connections
        self._blocking: RedisClient | None = None
        self._waiting: RedisClient | None = None
        #: the probe's ServerInfo, cached for every backend sharing this connection
        self.server_info: Any = None
        self._refs = 0

    @property
    def blocking_client(self) -> RedisClient:
        """A second client for blocking calls (longer socket timeout), made on first use."""
        if self._blocking is None:
            self._blocking, _ = _build_client(self._config, self._options, blocking=True)
        return self._blocking

    def waiting_client(self, wait_timeout: float) -> RedisClient:
        """A client for writes followed by WAIT / WAITAOF: its socket timeout also covers
        ``wait_timeout`` (made on first use; one per connection, whose key holds the options)."""
        if self._waiting is None:
            self._waiting, _ = _build_client(self._config, self._options, extra_timeout=wait_timeout)
        return self._waiting

    def pool_stats(self) -> ConnectionPoolStats:
        """Active (checked out) and idle connections of the real pool."""
        if isinstance(self.client, RedisCluster):
            active = idle = 0
            for node in self.client.get_nodes():
                idle += len(getattr(node, "_free", ()))
                active += max(0, len(getattr(node, "_connections", ())) - len(getattr(node, "_free", ())))
            return ConnectionPoolStats(active=active, idle=idle, max=self.max_connections)
        pool = self.client.connection_pool
        if isinstance(pool, BoundedConnectionPool):
            return ConnectionPoolStats(active=pool.checked_out, idle=pool.idle, max=self.max_connections)
        return ConnectionPoolStats(active=0, idle=0, max=self.max_connections)  # pragma: no cover

    async def release(self) -> None:
        """Drop one reference; the last one closes every client and its pool (the sockets).

        Raises:
            Nothing from the clients: a failure to close one socket does not keep the
            others open.
        """
        self._refs -= 1
        if self._refs > 0:
            return
        _SHARED.pop(self._key, None)
        clients = [c for c in (self.client, self._blocking, self._waiting) if c is not None]
        self._blocking = self._waiting = None
        for client in clients:
            await _close_client(client)

    def __repr__(self) -> str:
        return f"<RedisConnection cluster={self.cluster} refs={self._refs}>"


_SHARED: dict[tuple[Any, ...], RedisConnection] = {}


def acquire_connection(config: BackendConfig, options: RedisConnectionOptions) -> RedisConnection:
    """Get the shared connection for these settings (creating it), adding a reference.

    Shared per event loop: two backends (two queues) on one server with the
    same settings use one pool. Call :meth:`RedisConnection.release` when done.

    Raises:
        ConfigurationError: the URL or an option is invalid.
        UnsupportedOperationError: not called on an asyncio event loop (under trio, say).
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        raise UnsupportedOperationError(
            config.name or config.type,
            "connect",
            "the Redis backends run on asyncio (redis.asyncio); under trio use the memory backend, "
            "or run the program with anyio.run(main, backend='asyncio') or asyncio.run(main())",
        ) from None
    check_connection_config(config, options)
    base = msgspec.structs.asdict(options)
    base.update({k: float(v) for k, v in base.items() if isinstance(v, Seconds)})
    key = (
        id(loop),
        config.url,
        config.database,
        config.cluster_mode,
        tuple(config.cluster_addrs),
        tuple(sorted(base.items())),
    )
    conn = _SHARED.get(key)
    if conn is None:
        conn = RedisConnection(key, config, options)
        _SHARED[key] = conn
    conn._refs += 1
    return conn

"""Connections: typed connection options and pooled clients shared between
backends with identical settings, standalone or Redis Cluster (URLs are parsed by
:mod:`queuestore._url`).

Every option here is applied to the real client or rejected by name (redis-py's
names are accepted as aliases; setting one option under two names with two values
is an error):

======================  ======================  ==============================================
option                  redis-py alias          applied as
======================  ======================  ==============================================
url                                             redis://, valkey:// (TCP), rediss://, valkeys://
                                                (TLS), unix:// (socket); user, password, db and
                                                query options (see :mod:`queuestore._url`)
password/username                               ACL credentials (override the URL's)
max_connections                                 pool size (standalone: bounded; cluster: per node)
conn_timeout            socket_connect_timeout  connect and TLS handshake timeout (not retried)
read_timeout            socket_timeout (both)   socket timeout of every command (redis-py has
write_timeout                                   one: the larger of the two is applied)
pool_timeout                                    wait for a free pooled connection (standalone)
block_timeout                                   longest single blocking call (BLPOP/XREADGROUP
                                                BLOCK), on its own pool with a longer timeout
idle_timeout            health_check_interval   idle connections are PINGed before reuse
max_retries                                     reconnects on a broken connection (never on a
                                                timed-out command, whose outcome is unknown)
tls                     ssl                     TLS on a redis:// URL (rediss:// turns it on)
tls_ca_file             ssl_ca_certs            CA bundle that verifies the server
tls_cert_file           ssl_certfile            client certificate (mutual TLS)
tls_key_file            ssl_keyfile             the client certificate's key
tls_verify              ssl_cert_reqs           verify the server's certificate (none/required)
tls_check_hostname      ssl_check_hostname      match the host name (default: tls_verify)
======================  ======================  ==============================================

The Redis backends run on asyncio only: creating one under another event loop (trio)
fails at once with :class:`~queuestore.errors.UnsupportedOperationError`.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import msgspec
import redis.asyncio as aredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from queuestore._durations import Seconds
from queuestore._models import BackendConfig, ConnectionPoolStats
from queuestore._url import OPTION_ALIASES, ServerURL, alias_value, parse_server_url, split_host_port
from queuestore.backends._redis.pool import BoundedConnectionPool
from queuestore.errors import ConfigurationError, UnsupportedOperationError

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


class RedisConnectionOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Connection settings shared by every Redis-protocol backend."""

    password: str | None = None
    username: str | None = None
    max_connections: int = 10
    conn_timeout: Seconds = Seconds(30.0)
    read_timeout: Seconds = Seconds(1.0)
    write_timeout: Seconds = Seconds(1.0)
    pool_timeout: Seconds = Seconds(4.0)
    block_timeout: Seconds = Seconds(1.0)
    idle_timeout: Seconds = Seconds(300.0)
    max_retries: int = 3
    tls: bool = False
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_verify: bool = True
    tls_check_hostname: bool | None = None
    # redis-py's names (aliases; see the module docstring): resolved by check_connection_config
    socket_connect_timeout: Seconds | None = None
    socket_timeout: Seconds | None = None
    health_check_interval: Seconds | None = None
    ssl: bool | None = None
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_cert_reqs: str | bool | None = None
    ssl_check_hostname: bool | None = None

    def __repr__(self) -> str:
        fields = {f: getattr(self, f) for f in self.__struct_fields__}
        if fields.get("password") is not None:
            fields["password"] = "***"
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"


_DEFAULTS = RedisConnectionOptions()


def resolve_aliases(options: RedisConnectionOptions) -> None:
    """Move the values given under redis-py's names to queuestore's (in place; idempotent).

    Raises:
        ConfigurationError: naming ``options.<alias>``: both names given with two values,
            or a bad ``ssl_cert_reqs``.
    """
    for alias, targets in OPTION_ALIASES.items():
        given = getattr(options, alias)
        if given is None:
            continue
        try:
            value = alias_value(alias, given)
        except ConfigurationError as exc:
            raise exc.with_prefix("options") from None
        for target in targets:
            current = getattr(options, target)
            if current != getattr(_DEFAULTS, target) and current != value:
                raise ConfigurationError(
                    f"options.{alias}",
                    f"conflicts with options.{target} ({current!r}); two names of one option: set one",
                )
            setattr(options, target, value)
        setattr(options, alias, None)


def effective_options(config: BackendConfig, options: RedisConnectionOptions) -> RedisConnectionOptions:
    """The options applied to the client: ``options`` with redis-py's names resolved, under
    the URL's query options (which win, as in redis-py's ``from_url``).

    Raises:
        ConfigurationError: naming ``url`` or ``options.<field>``.
    """
    resolve_aliases(options)
    if not config.url:
        return options
    parsed = parse_server_url(config.url)
    if not parsed.options:
        return options
    return msgspec.structs.replace(options, **parsed.options)


def check_connection_config(config: BackendConfig, options: RedisConnectionOptions) -> None:
    """Validate the connection part of a backend config.

    Raises:
        ConfigurationError: naming url, cluster_addrs, database or options.<field>.
    """
    options = effective_options(config, options)
    from_url = set(parse_server_url(config.url).options) if config.url else set()

    def where(name: str) -> str:  # a value from the URL's query is the url's error
        return "url" if name in from_url else f"options.{name}"

    if config.cluster_mode:
        addrs = config.cluster_addrs or ([] if not config.url else [config.url])
        if not addrs:
            raise ConfigurationError("cluster_addrs", "cluster_mode needs cluster_addrs or a url")
        for i, addr in enumerate(config.cluster_addrs):
            split_host_port(addr, f"cluster_addrs[{i}]")
        if config.url:
            parse_server_url(config.url)
        if config.database:
            raise ConfigurationError("database", "Redis Cluster has only database 0")
    else:
        if not config.url:
            raise ConfigurationError("url", "required (redis://host:port/db)")
        parsed = parse_server_url(config.url)
        if parsed.scheme == "unix" and options.tls:
            raise ConfigurationError("options.tls", "TLS does not apply to a unix:// socket")
        tls_in_url = {k for k in parsed.options if k.startswith("tls_")}
        if tls_in_url and parsed.scheme != "rediss" and not options.tls:
            raise ConfigurationError(
                "url", f"{', '.join(sorted(tls_in_url))} given but TLS is off (use rediss:// or valkeys://)"
            )
    if options.tls_check_hostname and not options.tls_verify:
        raise ConfigurationError(
            "options.tls_check_hostname",
            "needs tls_verify (a host name is checked on a verified certificate)",
        )
    if options.max_connections < 1:
        raise ConfigurationError(where("max_connections"), "max_connections must be >= 1")
    if options.max_retries < 0:
        raise ConfigurationError(where("max_retries"), "max_retries must be >= 0")
    for name in ("conn_timeout", "read_timeout", "write_timeout", "pool_timeout"):
        if getattr(options, name) <= 0:
            raise ConfigurationError(where(name), f"{name} must be > 0")


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
        client: RedisClient = RedisCluster(
            startup_nodes=nodes, max_connections=options.max_connections, require_full_coverage=True, **kw
        )
        return client, 0
    assert parsed is not None
    db = config.database if config.database is not None else (parsed.db or 0)
    if parsed.scheme == "unix":
        conn_kw = {k: v for k, v in kw.items() if not k.startswith("ssl")}
        conn_kw.pop("socket_connect_timeout", None)
        pool = BoundedConnectionPool(
            max_connections=options.max_connections,
            timeout=float(options.pool_timeout),
            connection_class=aredis.UnixDomainSocketConnection,
            path=parsed.path,
            db=db,
            **conn_kw,
        )
    else:
        conn_class: type[aredis.Connection] = aredis.Connection
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


class TLSConnection(aredis.SSLConnection):
    """redis-py's TLS connection, whose connect failure says when the port may be plain-text.

    A TLS client on a plain-text port sends its handshake and the server waits for a
    command line that never comes: the connect times out (after ``conn_timeout``, not
    retried) and the error says to check the scheme.
    """

    async def connect(self) -> None:
        """Connect and run the TLS handshake.

        Raises:
            redis.exceptions.ConnectionError: no TLS answer within ``conn_timeout`` or a
                broken handshake, with a hint about plain-text servers.
        """
        try:
            await super().connect()  # type: ignore[no-untyped-call]
        except (RedisTimeoutError, RedisConnectionError) as exc:
            text = _tls_failure(exc)
            if text is None:
                raise
            if "CERTIFICATE" in text.upper():
                hint = (
                    "the server's certificate was not accepted: set tls_ca_file to the CA that signs it, "
                    "or tls_check_hostname: false / tls_verify: false if you must"
                )
            else:
                hint = (
                    "the server may not speak TLS on this port: use redis:// for a plain-text server, "
                    "rediss:// only for a TLS one"
                )
            raise RedisConnectionError(
                f"TLS connection to {self.host}:{self.port} failed ({text}); {hint}"
            ) from exc


def _tls_failure(exc: BaseException) -> str | None:
    """The text of a TLS failure behind a connect error (a timeout counts), else None.

    redis-py before 5.1 turns an ``ssl.SSLError`` into "Error 1 connecting to ...": the
    reason is read from the chained exception.
    """
    if isinstance(exc, RedisTimeoutError):
        return str(exc)
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "SSL" in str(seen):
            return f"{exc}: {seen}" if seen is not exc else str(exc)
        seen = seen.__cause__ or seen.__context__
    return None


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
    """

    def __init__(self, key: tuple[Any, ...], config: BackendConfig, options: RedisConnectionOptions) -> None:
        self._key = key
        self._config = config
        self._options = options
        self.client, _ = _build_client(config, options)
        self.cluster = config.cluster_mode
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

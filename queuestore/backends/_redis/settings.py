"""Connection settings of the Redis backends: the typed options, redis-py's names for them
(aliases), the URL's query options over them, and their checks.

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
"""

from __future__ import annotations

import msgspec

from queuestore._durations import Seconds
from queuestore._models import BackendConfig
from queuestore._url import OPTION_ALIASES, alias_value, parse_server_url, split_host_port
from queuestore.errors import ConfigurationError

__all__ = ["RedisConnectionOptions", "check_connection_config", "effective_options", "resolve_aliases"]


class RedisConnectionOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Connection settings shared by every Redis-protocol backend.

    Attributes:
        password: ACL password (overrides the URL's); never shown in a repr or an error.
        username: ACL user name (overrides the URL's).
        max_connections: pool size (standalone: a bounded pool; cluster: per node).
        conn_timeout: socket connect and TLS handshake timeout (a timed-out connect is not retried).
        read_timeout: socket timeout of every command (redis-py has one socket timeout:
            the larger of ``read_timeout`` and ``write_timeout`` is applied).
        write_timeout: see ``read_timeout``.
        pool_timeout: how long a caller waits for a free pooled connection (standalone).
        block_timeout: longest single blocking call (BLPOP / XREADGROUP BLOCK); a longer
            ``DequeueOptions.timeout`` is a loop of such calls, on a pool of their own.
        idle_timeout: a connection idle longer than this is checked with PING before reuse.
        max_retries: reconnect attempts on a broken connection (never on a timed-out
            command, whose outcome is unknown).
        tls: TLS on a ``redis://`` URL (``rediss://`` and ``valkeys://`` turn it on by themselves).
        tls_ca_file: CA bundle that verifies the server's certificate.
        tls_cert_file: client certificate (mutual TLS).
        tls_key_file: the client certificate's private key.
        tls_verify: verify the server's certificate.
        tls_check_hostname: match the certificate to the host name (default: ``tls_verify``).
        socket_connect_timeout: redis-py's name for ``conn_timeout``.
        socket_timeout: redis-py's name for ``read_timeout`` and ``write_timeout`` together.
        health_check_interval: redis-py's name for ``idle_timeout``.
        ssl: redis-py's name for ``tls``.
        ssl_ca_certs: redis-py's name for ``tls_ca_file``.
        ssl_certfile: redis-py's name for ``tls_cert_file``.
        ssl_keyfile: redis-py's name for ``tls_key_file``.
        ssl_cert_reqs: redis-py's name for ``tls_verify`` (``"none"`` / ``"required"``, or a bool).
        ssl_check_hostname: redis-py's name for ``tls_check_hostname``.
    """

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

"""The generic (factory-independent) rules of a backend config.

What holds for every backend type, or for every type that talks to a
Redis-compatible server, whatever its factory: the database number, the URL
and cluster addresses (parsed by :mod:`queuestore._url`), the streams names,
the connection defaults of the ``defaults:`` section and which options say how
to reach a server. Field paths in the errors raised here are relative to the
backend (``url``, ``database``, ``options.stream_name``...); the caller prefixes
them with ``backends.<name>``.
"""

from __future__ import annotations

from typing import Any

from queuestore._models import BackendConfig, DefaultsConfig
from queuestore._url import OPTION_ALIASES, parse_server_url, split_host_port
from queuestore.errors import ConfigurationError

__all__ = ["REDIS_FAMILY", "alias_given", "check_backend", "connection_defaults", "connection_options"]

#: the built-in types that talk to a Redis-compatible server
REDIS_FAMILY = frozenset({"redis-lists", "redis-streams", "keydb", "dragonfly"})
#: options that identify *how to reach* a server (carried over to a config on the same server)
_CONNECTION_KEYS = frozenset({"username", "password", "tls", "ssl"})


def connection_defaults(defaults: DefaultsConfig) -> dict[str, Any]:
    """The connection options every Redis-family type takes from the ``defaults:`` section.

    ``pool_size`` -> ``max_connections``, ``timeout`` -> ``conn_timeout``, and
    ``read_timeout`` / ``write_timeout`` / ``idle_timeout`` / ``max_retries`` as named.
    A factory may tune these for its type (``BackendFactory.option_defaults``).
    """
    return {
        "conn_timeout": float(defaults.timeout),
        "idle_timeout": float(defaults.idle_timeout),
        "max_retries": defaults.max_retries,
        "max_connections": defaults.pool_size,
        "read_timeout": float(defaults.read_timeout),
        "write_timeout": float(defaults.write_timeout),
    }


def alias_given(name: str, options: dict[str, Any]) -> bool:
    """True when ``options`` sets option ``name`` under redis-py's spelling (``socket_timeout``
    sets ``read_timeout``): a default must not be filled in next to it."""
    return any(alias in options for alias, targets in OPTION_ALIASES.items() if name in targets)


def connection_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options of ``options`` that say how to reach and authenticate to the server."""
    return {k: v for k, v in options.items() if k in _CONNECTION_KEYS or k.startswith(("tls_", "ssl_"))}


def check_backend(config: BackendConfig) -> None:
    """The factory-independent checks of one backend config.

    For every type: ``database`` >= 0. For the Redis family: a ``url`` (or
    ``cluster_mode`` with ``cluster_addrs``) that parses, no conflict between
    the URL's database and ``database``, no database but 0 in cluster mode,
    and, for ``redis-streams``, ``stream_name`` / ``consumer_group`` /
    ``consumer_name`` being non-empty strings when given (when absent they are
    derived: the stream from the queue name, the group and consumer by the backend).

    Raises:
        ConfigurationError: naming the field relative to the backend.
    """
    if config.database is not None and (isinstance(config.database, bool) or config.database < 0):
        raise ConfigurationError("database", f"must be an int >= 0, got {config.database!r}")
    if config.type not in REDIS_FAMILY:
        return
    url_db: int | None = None
    if config.url:
        url_db = parse_server_url(config.url).db
    elif not config.cluster_mode:
        raise ConfigurationError("url", "required (or cluster_mode: true with cluster_addrs)")
    if config.cluster_addrs and not config.cluster_mode:
        raise ConfigurationError("cluster_addrs", "given but cluster_mode is false")
    if config.cluster_mode and not config.url and not config.cluster_addrs:
        raise ConfigurationError("cluster_addrs", "cluster_mode needs cluster_addrs (or a url)")
    for i, addr in enumerate(config.cluster_addrs):
        split_host_port(addr, f"cluster_addrs[{i}]")
    if url_db is not None and config.database is not None and url_db != config.database:
        raise ConfigurationError("database", f"{config.database} conflicts with database {url_db} in the url")
    db = config.database if config.database is not None else url_db
    if config.cluster_mode and db:
        raise ConfigurationError("database", f"a cluster has only database 0, got {db}")
    if config.type == "redis-streams":
        for key in ("stream_name", "consumer_group", "consumer_name"):
            value = config.options.get(key)
            if key in config.options and (not isinstance(value, str) or not value.strip()):
                raise ConfigurationError(f"options.{key}", f"must be a non-empty string, got {value!r}")

"""Per-type defaults and the generic (factory-independent) checks of a backend config.

Field paths in the errors raised here are relative to the backend
(``url``, ``database``, ``options.stream_name``...); the caller prefixes them
with ``backends.<name>``.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import msgspec

from queuestore._models import BackendConfig
from queuestore._registry import BackendRegistry
from queuestore.errors import ConfigurationError

__all__ = [
    "REDIS_FAMILY",
    "accepted_options",
    "check_backend",
    "check_url",
    "config_on_server",
    "connection_options",
    "safe_url",
    "type_defaults",
]

#: the built-in types that talk to a Redis-compatible server
REDIS_FAMILY = frozenset({"redis-lists", "redis-streams", "keydb", "dragonfly"})
_SCHEMES = ("redis", "rediss", "unix")
#: options that identify *how to reach* a server (carried over by ``resolve_backend_config``)
_CONNECTION_KEYS = frozenset({"username", "password", "tls", "ssl"})


def type_defaults(backend_type: str, defaults: Any) -> dict[str, Any]:
    """The options ``apply_defaults`` fills for one backend type, from the ``defaults:`` section.

    ``defaults`` is a ``DefaultsConfig``. KeyDB and Dragonfly use their own tuned
    read/write timeouts (the seed's values), not ``defaults.read_timeout``/``write_timeout``.
    The ``memory`` type, and types this table does not know, get nothing.
    """
    if backend_type not in REDIS_FAMILY:
        return {}
    d = defaults
    common: dict[str, Any] = {
        "conn_timeout": float(d.timeout),
        "idle_timeout": float(d.idle_timeout),
        "max_retries": d.max_retries,
    }
    if backend_type == "keydb":
        return {
            **common,
            "max_connections": d.pool_size * 2,
            "read_timeout": 0.1,
            "write_timeout": 0.2,
            "pipeline_size": d.batch_size,
        }
    if backend_type == "dragonfly":
        return {
            **common,
            "max_connections": d.pool_size * 3,
            "read_timeout": 0.05,
            "write_timeout": 0.1,
            "pipeline_size": d.batch_size * 2,
            "compression": True,
        }
    return {
        **common,
        "max_connections": d.pool_size,
        "read_timeout": float(d.read_timeout),
        "write_timeout": float(d.write_timeout),
    }


def accepted_options(registry: BackendRegistry, backend_type: str) -> frozenset[str] | None:
    """The option names the type's factory accepts; None when unknown (factory not loadable)."""
    if not registry.is_loadable(backend_type):
        return None
    options_type = getattr(registry.factory(backend_type), "options_type", None)
    if options_type is None:
        return None
    return frozenset(f.encode_name for f in msgspec.structs.fields(options_type))


def connection_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options of ``options`` that say how to reach and authenticate to the server."""
    return {k: v for k, v in options.items() if k in _CONNECTION_KEYS or k.startswith(("tls_", "ssl_"))}


def config_on_server(
    registry: BackendRegistry, backend_type: str, *, like: BackendConfig, queue: str, defaults: Any = None
) -> BackendConfig:
    """A config for ``backend_type`` on the same server as ``like``, serving ``queue``.

    Same url, database, cluster settings and credentials (``password``,
    ``username``, ``tls``, ``ssl_*``/``tls_*`` options) as ``like``; the type's
    per-type defaults from ``defaults`` (a ``DefaultsConfig``; none when None);
    no other option. A non-Redis type (``memory``) gets no server settings.
    Options the type's factory does not accept are dropped.
    """
    if backend_type not in REDIS_FAMILY:
        return BackendConfig(type=backend_type, name=backend_type, queue=queue)
    options = type_defaults(backend_type, defaults) if defaults is not None else {}
    if like.type in REDIS_FAMILY:
        options.update(connection_options(like.options))
    accepted = accepted_options(registry, backend_type)
    if accepted is not None:
        options = {k: v for k, v in options.items() if k in accepted}
    return BackendConfig(
        type=backend_type,
        name=backend_type,
        url=like.url,
        database=like.database,
        queue=queue,
        cluster_mode=like.cluster_mode,
        cluster_addrs=list(like.cluster_addrs),
        options=options,
    )


def safe_url(url: str) -> str:
    """``url`` with any user/password part replaced by ``***`` (for messages)."""
    head, sep, rest = url.partition("://")
    if sep and "@" in rest:
        return f"{head}://***@{rest.rpartition('@')[2]}"
    return url


def _db_int(text: str, what: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ConfigurationError("url", f"{what} must be an int >= 0, got {text!r}")
    return int(text)


def check_url(url: str) -> int | None:
    """Check a ``redis://``, ``rediss://`` or ``unix://`` URL; return the database it names, if any.

    Raises:
        ConfigurationError: field ``url``; the message never repeats a password.
    """
    head, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo, _, hostpart = rest.rpartition("@")
        if any(c in userinfo for c in "/?#"):
            raise ConfigurationError("url", "the user/password part holds '/', '?' or '#': percent-encode it")
        url = f"{head}://{hostpart}"
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise ConfigurationError("url", f"not a valid URL ({exc})") from None
    if parts.scheme not in _SCHEMES:
        raise ConfigurationError(
            "url", f"scheme must be one of {', '.join(_SCHEMES)}, got {parts.scheme or 'none'!r}"
        )
    query = urllib.parse.parse_qs(parts.query)
    db: int | None = None
    if "db" in query:
        db = _db_int(query["db"][-1], "the db query parameter")
    if parts.scheme == "unix":
        if not parts.path:
            raise ConfigurationError("url", "a unix:// URL needs a socket path")
        return db
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        port = parts.netloc.rpartition(":")[2]
        raise ConfigurationError("url", f"port must be an int in 0..65535, got {port!r}") from None
    if not parts.hostname:
        raise ConfigurationError("url", f"no host in {safe_url(url)!r}")
    path = parts.path.strip("/")
    if path:
        db = _db_int(path, "the database in the URL path")
    return db


def _check_addr(addr: str, field: str) -> None:
    host, sep, port = addr.rpartition(":")
    if not sep or not host.strip("[]"):
        raise ConfigurationError(field, f"expected host:port, got {addr!r}")
    if not port.isdigit() or not port.isascii() or not 0 < int(port) < 65536:
        raise ConfigurationError(field, f"port must be an int in 1..65535, got {port!r}")


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
        url_db = check_url(config.url)
    elif not config.cluster_mode:
        raise ConfigurationError("url", "required (or cluster_mode: true with cluster_addrs)")
    if config.cluster_addrs and not config.cluster_mode:
        raise ConfigurationError("cluster_addrs", "given but cluster_mode is false")
    if config.cluster_mode and not config.url and not config.cluster_addrs:
        raise ConfigurationError("cluster_addrs", "cluster_mode needs cluster_addrs (or a url)")
    for i, addr in enumerate(config.cluster_addrs):
        _check_addr(addr, f"cluster_addrs[{i}]")
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

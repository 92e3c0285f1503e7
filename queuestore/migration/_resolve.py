"""Finding a migration's source and target: configs and the deterministic migration id."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgspec

from queuestore._config_rules import REDIS_FAMILY
from queuestore._manager import DEFAULT_KEY_PREFIX, BackendManager
from queuestore._models import BackendConfig
from queuestore._url import parse_server_url
from queuestore.abc import QueueBackend
from queuestore.errors import (
    BackendNotFoundError,
    ConfigurationError,
    MigrationError,
    QueueNotFoundError,
)
from queuestore.migration._models import MigrationOptions
from queuestore.migration._routing import RoutingBackend

__all__ = ["Endpoints", "migration_id", "resolve"]


def _identity(cfg: BackendConfig) -> str:
    opts = cfg.options
    parts = [cfg.type, cfg.url, str(cfg.database), str(cfg.cluster_mode), ",".join(sorted(cfg.cluster_addrs))]
    parts += [
        str(opts.get("key_prefix", "")),
        str(opts.get("namespace", cfg.name if cfg.type == "memory" else "")),
    ]
    parts += [str(opts.get("stream_name", ""))]
    return "\x1f".join(parts)


def _server(cfg: BackendConfig) -> tuple[str, ...]:
    """The server and database a Redis-family config reaches (the URL parsed, so that
    ``redis://h:6379/0`` and ``redis://h`` with ``database: 0`` are the same)."""
    addrs = ",".join(sorted(cfg.cluster_addrs))
    try:
        url = parse_server_url(cfg.url) if cfg.url else None
    except ConfigurationError:
        return (cfg.url, str(cfg.database), str(cfg.cluster_mode), addrs)
    db = (
        cfg.database
        if cfg.database is not None
        else (url.db if url is not None and url.db is not None else 0)
    )
    where = (url.scheme, url.host.lower(), str(url.port), url.path) if url is not None else ("",)
    return (*where, str(db), str(cfg.cluster_mode), addrs)


def _namespace(cfg: BackendConfig) -> tuple[str, ...] | None:
    """Where a Redis-family backend's keys live (server, database and key prefix); None
    for other types."""
    if cfg.type not in REDIS_FAMILY:
        return None
    prefix = cfg.options.get("key_prefix")
    return (*_server(cfg), prefix if isinstance(prefix, str) else DEFAULT_KEY_PREFIX)


def migration_id(queue: str, source: BackendConfig, target: BackendConfig) -> str:
    """The deterministic id of migrating ``queue`` from ``source`` to ``target``."""
    raw = "\x1e".join([queue, _identity(source), _identity(target)])
    return "mig-" + hashlib.sha256(raw.encode()).hexdigest()[:20]


@dataclass
class Endpoints:
    """What a migration moves between: the source backend and both configs."""

    source: QueueBackend
    source_config: BackendConfig
    target_config: BackendConfig
    proxy: RoutingBackend | None
    migration_id: str
    #: set when the target was named by a backend *type*: what to add to the config (see :func:`home_note`)
    home_note: str | None = None


def _named(manager: BackendManager, name: str) -> bool:
    """Whether ``name`` is a backend of the loaded config or of a routed queue."""
    if manager.config is not None and name in manager.config.backends:
        return True
    return any(manager.get_backend_config(q).name == name for q in manager.list_queues())


def home_note(queue: str, target: BackendConfig) -> str:
    """What an operator must add to the config so that every process finds a queue's new home
    when the migration target was named by a backend type (no secret in it)."""
    prefix = target.options.get("key_prefix")
    where = f" with key_prefix {prefix}" if isinstance(prefix, str) else ""
    return (
        f"target {target.type!r} is a backend type, not a backend of the config: the queue's new home is "
        f"a {target.type} store on the source's server{where}; after switching, add a backend with these "
        f"settings to the config and point queue {queue!r} at it, or a process started from the same "
        "config keeps serving the old backend"
    )


def _matches(name: str, cfg: BackendConfig, backend: QueueBackend) -> bool:
    return name in (cfg.name, cfg.type, backend.name)


def resolve(manager: BackendManager, queue: str, options: MigrationOptions) -> Endpoints:
    """Resolve the source (what serves ``queue`` now, or the source behind a routing proxy
    left by an interrupted migration) and the target config.

    Raises:
        MigrationError: in phase "validation": unknown queue or backend, the source does not
            match ``options.source_backend``, or source and target are the same store.
    """
    try:
        current, cfg = manager.get_backend(queue), manager.get_backend_config(queue)
    except QueueNotFoundError as exc:
        raise MigrationError("validation", str(exc)) from None
    proxy = current if isinstance(current, RoutingBackend) else None
    source = proxy.source if proxy is not None else current
    source_cfg = proxy.source_config if proxy is not None else cfg
    if options.source_backend and not _matches(options.source_backend, source_cfg, source):
        raise MigrationError(
            "validation",
            f"queue {queue!r} is on backend {source_cfg.name or source_cfg.type!r} ({source_cfg.type}), "
            f"not {options.source_backend!r}",
        )
    try:
        target_cfg = manager.resolve_backend_config(options.target_backend, like=source_cfg, queue=queue)
    except BackendNotFoundError as exc:
        raise MigrationError("validation", str(exc)) from None
    target_cfg = msgspec.structs.replace(target_cfg, queue=queue)
    if _identity(target_cfg) == _identity(source_cfg):
        raise MigrationError("validation", f"source and target of queue {queue!r} are the same store")
    shared = _namespace(target_cfg)
    if shared is not None and shared == _namespace(source_cfg):
        raise MigrationError(
            "validation",
            f"target {target_cfg.name or target_cfg.type!r} ({target_cfg.type}) and source "
            f"{source_cfg.name or source_cfg.type!r} ({source_cfg.type}) would share keys: same server "
            f"and key_prefix {shared[-1]!r}; give the target its own key_prefix",
        )
    if proxy is not None and _identity(proxy.target_config) != _identity(target_cfg):
        raise MigrationError(
            "validation",
            f"queue {queue!r} has an unfinished migration to {proxy.target.name!r}: "
            "resume or roll it back first",
        )
    return Endpoints(
        source=source,
        source_config=source_cfg,
        target_config=target_cfg,
        proxy=proxy,
        migration_id=migration_id(queue, source_cfg, target_cfg),
        home_note=None if _named(manager, options.target_backend) else home_note(queue, target_cfg),
    )

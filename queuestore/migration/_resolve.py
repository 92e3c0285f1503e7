"""Finding a migration's source and target: configs and the deterministic migration id."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgspec

from queuestore._manager import BackendManager
from queuestore._models import BackendConfig
from queuestore.abc import QueueBackend
from queuestore.errors import (
    BackendNotFoundError,
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
    )

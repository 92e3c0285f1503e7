"""What a ``BackendManager`` offers the migration layer (:class:`MigrationSide`, one of its
bases): the one-migration-per-queue claims, backends it owns without routing a queue to them
and the switch of a queue's route, the config a migration target names, and following a
queue that another process moved. ``_manager.py`` keeps routing, monitoring and lifecycle.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, cast

import anyio
import msgspec

from queuestore._config import StorageConfig
from queuestore._config_defaults import config_on_server
from queuestore._config_rules import REDIS_FAMILY
from queuestore._models import BackendConfig
from queuestore._owned import OwnedBackends
from queuestore._record import RecordReply
from queuestore._registry import BackendRegistry
from queuestore.abc import QueueBackend
from queuestore.errors import (
    BackendClosedError,
    BackendError,
    BackendNotFoundError,
    ConfigurationError,
    QueueMovedError,
)

if TYPE_CHECKING:
    from queuestore._manager import BackendManager

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "MigrationClaims",
    "MigrationSide",
    "check_queue",
    "derived_key_prefix",
    "resolve_target_config",
]

log = logging.getLogger("queuestore.manager")

#: the ``key_prefix`` of a Redis-family backend that names none
DEFAULT_KEY_PREFIX = "queue:"


class MigrationSide:
    """The methods of ``BackendManager`` that the migration layer uses (a base of it: the
    attributes below are the manager's own)."""

    home_check_interval: float
    _registry: BackendRegistry
    _config: StorageConfig | None
    _routes: dict[str, tuple[QueueBackend, BackendConfig]]
    _owned: OwnedBackends
    _claims: MigrationClaims
    _homes_scope: anyio.CancelScope

    if TYPE_CHECKING:  # the manager's own

        def _check_open(self, operation: str) -> None: ...

        async def _create(self, config: BackendConfig, operation: str) -> QueueBackend: ...

        async def _release(self, backend: QueueBackend) -> None: ...

    def begin_migration(self, queue: str, migration: object) -> object | None:
        """Record ``migration`` as the one migration running on ``queue``.

        One migration per queue per manager, whoever starts it (a ``MigrationManager``
        or a ``MigrationTool``).

        Returns:
            None when recorded; otherwise the migration recorded already (nothing changes).
        """
        return self._claims.begin(queue, migration)

    def end_migration(self, queue: str, migration: object) -> None:
        """Forget ``migration`` as the one running on ``queue`` (if it still is)."""
        self._claims.end(queue, migration)

    def note_moved_here(self, queue: str, record: RecordReply) -> None:
        """Keep the record of the migration that moved ``queue`` to the backend now serving it,
        read in the old home's store when this manager (following another process's run)
        switched over: the new home's store holds no record of that run."""
        self._claims.moved[queue] = record

    def moved_record(self, queue: str) -> RecordReply | None:
        """The record kept by :meth:`note_moved_here` (None: none, or a run of this manager
        began on ``queue`` since)."""
        return self._claims.moved.get(queue)

    async def open_backend(self, config: BackendConfig) -> QueueBackend:
        """Create a backend the manager owns (closed with it) but routes no queue to.

        Raises:
            BackendNotFoundError, ConfigurationError, BackendClosedError, BackendError: as add_backend.
        """
        self._check_open("open_backend")
        return await self._create(config, "open_backend")

    async def switch_backend(
        self, queue: str, backend: QueueBackend, config: BackendConfig
    ) -> QueueBackend | None:
        """Route ``queue`` to an existing backend; return the previous one, *not* closed.

        The manager takes ownership of ``backend``; the previous backend stays
        owned (closed with the manager, or earlier with :meth:`close_backend`).

        Raises:
            ConfigurationError: ``backend`` serves another queue (field ``queue``).
            BackendClosedError: ``backend`` or the manager is closed.
        """
        self._check_open("switch_backend")
        check_queue(queue)
        if backend.closed:
            raise BackendClosedError(backend.name, "switch_backend", "backend is closed")
        if backend.queue != queue:
            raise ConfigurationError(
                "queue", f"backend {backend.name!r} serves queue {backend.queue!r}, not {queue!r}"
            )
        self._owned.adopt(backend)
        old = self._routes.get(queue)
        self._routes[queue] = (backend, msgspec.structs.replace(config, queue=queue))
        log.info("queue %s switched to backend %s (%s)", queue, backend.name, config.type)
        return None if old is None or old[0] is backend else old[0]

    async def close_backend(self, backend: QueueBackend) -> None:
        """Close an owned backend that no queue is routed to (e.g. after a switch).

        Raises:
            BackendError: a queue is still routed to it (operation ``close_backend``).
        """
        routed = [q for q, (b, _) in self._routes.items() if b is backend]
        if routed:
            raise BackendError(backend.name, "close_backend", f"queue {routed[0]!r} is still routed to it")
        await self._release(backend)

    def resolve_backend_config(self, name_or_type: str, *, like: BackendConfig, queue: str) -> BackendConfig:
        """The config a migration target names: a backend name, or a type on ``like``'s server.

        A name is looked up in the loaded config, then among the routed backends.
        A backend type means that type on the same server as ``like`` (url,
        database, cluster settings and credentials), with the type's defaults
        from ``config.defaults`` (when a config is loaded) and no other options
        but its own key namespace: a type that takes ``key_prefix`` gets
        ``<like's key_prefix><type>:`` (``queue:redis-streams:`` from the default
        ``queue:``), so its keys can never be the source's keys -- two layouts
        never share a key.

        Raises:
            BackendNotFoundError: neither a known backend name nor a registered type.
        """
        routed = [cfg for _, cfg in self._routes.values()]
        return resolve_target_config(
            self._registry, self._config, routed, name_or_type, like=like, queue=queue
        )

    async def _watch_homes(self) -> None:
        """Follow queues other processes migrate (see ``queuestore.migration._follow``)."""
        from queuestore.migration._follow import watch_homes  # the layer above: imported late

        with self._homes_scope:
            await watch_homes(cast("BackendManager", self), self.home_check_interval)

    async def _follow_moved(self, queue: str, err: QueueMovedError) -> QueueBackend:
        """Where ``queue``'s storing calls go after its store answered that it moved (see
        ``queuestore.migration._follow``)."""
        from queuestore.migration._follow import follow_home  # the layer above: imported late

        return await follow_home(cast("BackendManager", self), queue, err)


class MigrationClaims:
    """One migration per queue per manager, whoever starts it (a ``MigrationManager`` or a
    ``MigrationTool``)."""

    def __init__(self) -> None:
        self._running: dict[str, object] = {}
        #: per queue, the record of the run (of another process) that moved it here
        self.moved: dict[str, RecordReply] = {}

    def begin(self, queue: str, migration: object) -> object | None:
        """Record ``migration`` as the one running on ``queue``.

        Returns:
            None when recorded; otherwise the migration recorded already (nothing changes).
        """
        current = self._running.setdefault(queue, migration)
        if current is migration:
            self.moved.pop(queue, None)  # this manager's own run is the newer status
            return None
        return current

    def end(self, queue: str, migration: object) -> None:
        """Forget ``migration`` as the one running on ``queue`` (if it still is)."""
        if self._running.get(queue) is migration:
            del self._running[queue]


def resolve_target_config(
    registry: BackendRegistry,
    config: StorageConfig | None,
    routed: list[BackendConfig],
    name_or_type: str,
    *,
    like: BackendConfig,
    queue: str,
) -> BackendConfig:
    """The config a migration target names (see ``BackendManager.resolve_backend_config``).

    Raises:
        BackendNotFoundError: neither a known backend name nor a registered type.
    """
    if config is not None and name_or_type in config.backends:
        return msgspec.structs.replace(config.get_backend_config(name_or_type), queue=queue)
    for cfg in routed:
        if cfg.name == name_or_type:
            return msgspec.structs.replace(cfg, queue=queue, options=dict(cfg.options))
    if name_or_type not in registry:
        raise BackendNotFoundError(f"no backend or backend type named {name_or_type!r}")
    defaults = config.defaults if config is not None else None
    cfg = config_on_server(registry, name_or_type, like=like, queue=queue, defaults=defaults)
    accepted = registry.option_names(name_or_type)
    if cfg.type in REDIS_FAMILY and (accepted is None or "key_prefix" in accepted):
        cfg.options["key_prefix"] = derived_key_prefix(like, name_or_type)
    return cfg


def derived_key_prefix(like: BackendConfig, backend_type: str) -> str:
    """The ``key_prefix`` of a ``backend_type`` store made on ``like``'s server: ``like``'s
    own prefix (``queue:`` when it has none) followed by ``<backend_type>:``.

    Every key of a Redis backend with prefix ``P`` starts with ``P{``; every key under
    the derived prefix starts with ``P<type>:``, so the two never meet.
    """
    base = like.options.get("key_prefix") if like.type in REDIS_FAMILY else None
    return f"{base if isinstance(base, str) else DEFAULT_KEY_PREFIX}{backend_type}:"


def check_queue(queue: str) -> None:
    """Raises:
    ConfigurationError: ``queue`` is not a non-empty string (field ``queue``).
    """
    if not isinstance(queue, str) or not queue:
        raise ConfigurationError("queue", f"must be a non-empty string, got {queue!r}")

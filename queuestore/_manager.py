"""``BackendManager``: one backend per queue, created from config, checked and closed together.

The manager *owns* every backend it creates (``add_backend``, ``open_backend``,
``from_config``) or is handed (``switch_backend``) and closes them all on exit.
Used as an async context manager it also runs each backend's
``run_maintenance()`` loop (lease reclaim, delayed-job promotion) in one anyio
task group, opened in ``__aenter__`` and closed in ``__aexit__`` in the same
task; a loop that fails is logged and restarted with backoff. Without
``async with`` the backends work all the same (dequeue reclaims and promotes
opportunistically); call ``aclose()`` when done.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from types import TracebackType
from typing import Self

import anyio
import msgspec

from queuestore._config import StorageConfig
from queuestore._manager_migration import (
    DEFAULT_KEY_PREFIX,
    MigrationClaims,
    MigrationSide,
    check_queue,
    derived_key_prefix,
)
from queuestore._models import BackendConfig, BackendStats, HealthStatus
from queuestore._monitor import health_all, stats_all
from queuestore._owned import OwnedBackends
from queuestore._registry import BackendRegistry, default_registry
from queuestore.abc import QueueBackend
from queuestore.errors import (
    BackendClosedError,
    BackendError,
    QueueNotFoundError,
)

__all__ = ["DEFAULT_KEY_PREFIX", "BackendManager", "derived_key_prefix"]

log = logging.getLogger("queuestore.manager")


class BackendManager(MigrationSide):
    """Routes queues to backends.

    Args:
        registry: where backend types come from (default: :func:`default_registry`).
        config: the StorageConfig the routes come from, if any (``from_config`` sets it).
        health_timeout: per-backend time limit of :meth:`health_check`, seconds.
        stats_timeout: per-backend time limit of :meth:`stats`, seconds.
        home_check_interval: while entered, how often (seconds) the manager asks the stores
            of its queues whether a migration moved them (0: never; a storing call that is
            told so still follows). See ``queuestore.migration._follow``.
    """

    def __init__(
        self,
        registry: BackendRegistry | None = None,
        *,
        config: StorageConfig | None = None,
        health_timeout: float = 5.0,
        stats_timeout: float = 5.0,
        home_check_interval: float = 1.0,
    ) -> None:
        self.home_check_interval = home_check_interval
        self._registry = registry if registry is not None else default_registry()
        self._config = config
        self.health_timeout = health_timeout
        self.stats_timeout = stats_timeout
        self._routes: dict[str, tuple[QueueBackend, BackendConfig]] = {}
        self._owned = OwnedBackends()
        self._claims = MigrationClaims()
        self._stack: contextlib.AsyncExitStack | None = None
        self._homes_scope = anyio.CancelScope()
        self._closing = False
        self._closed = False

    @classmethod
    async def from_config(
        cls,
        config: StorageConfig,
        registry: BackendRegistry | None = None,
        *,
        health_timeout: float = 5.0,
        stats_timeout: float = 5.0,
        home_check_interval: float = 1.0,
    ) -> BackendManager:
        """Validate ``config`` and create one backend per queue in ``config.queues``.

        ``config`` is used as it is: call ``apply_defaults()`` first. Use as
        ``async with await BackendManager.from_config(cfg) as manager: ...``.
        On failure, the backends created so far are closed.

        Raises:
            ConfigurationError: the config is invalid (field path named).
            BackendNotFoundError: a backend type is unknown or cannot be loaded.
            BackendError: a backend could not connect (ConnectionFailedError...).
        """
        config.validate(registry)
        manager = cls(
            registry,
            config=config,
            health_timeout=health_timeout,
            stats_timeout=stats_timeout,
            home_check_interval=home_check_interval,
        )
        try:
            for queue in config.queues:
                await manager.add_backend(queue, config.backend_config_for_queue(queue))
        except BaseException:
            await manager.aclose()
            raise
        return manager

    # -- properties -------------------------------------------------------------------
    @property
    def registry(self) -> BackendRegistry:
        """The registry backends are created from."""
        return self._registry

    @property
    def config(self) -> StorageConfig | None:
        """The StorageConfig this manager was built from, or None."""
        return self._config

    @property
    def closed(self) -> bool:
        """True once the manager is closing or closed."""
        return self._closed or self._closing

    # -- routes -----------------------------------------------------------------------
    async def add_backend(self, queue: str, config: BackendConfig) -> QueueBackend:
        """Create a backend for ``queue`` (``config.queue`` set to it) and route the queue to it.

        A backend the queue was routed to before is closed. Queues on the same
        backend *name* get one backend each; Redis backends with identical
        connection settings share one connection pool underneath.

        Returns:
            The new backend (also available from :meth:`get_backend`).

        Raises:
            ConfigurationError: bad queue name or config.
            BackendNotFoundError: unknown backend type (code BACKEND_NOT_FOUND).
            BackendClosedError: the manager is closed.
            BackendError: the backend could not connect.
        """
        self._check_open("add_backend")
        check_queue(queue)
        cfg = msgspec.structs.replace(config, queue=queue)
        backend = await self._create(cfg, "add_backend")
        backend.follow_moved = functools.partial(self._follow_moved, queue)
        old = self._routes.get(queue)
        self._routes[queue] = (backend, cfg)
        log.info("queue %s -> backend %s (%s)", queue, cfg.name or cfg.type, cfg.type)
        if old is not None:
            await self._release(old[0])
        return backend

    def get_backend(self, queue: str) -> QueueBackend:
        """The backend serving ``queue``.

        Raises:
            QueueNotFoundError: no backend for that queue (code QUEUE_NOT_FOUND).
        """
        return self._route(queue)[0]

    def get_backend_config(self, queue: str) -> BackendConfig:
        """A copy of the config the backend of ``queue`` was made from.

        Raises:
            QueueNotFoundError: no backend for that queue.
        """
        cfg = self._route(queue)[1]
        return msgspec.structs.replace(cfg, options=dict(cfg.options), cluster_addrs=list(cfg.cluster_addrs))

    async def remove_backend(self, queue: str) -> None:
        """Stop routing ``queue`` and close its backend.

        Raises:
            QueueNotFoundError: no backend for that queue.
        """
        backend = self._route(queue)[0]
        del self._routes[queue]
        await self._release(backend)

    def list_queues(self) -> list[str]:
        """The routed queues, sorted."""
        return sorted(self._routes)

    # -- monitoring -------------------------------------------------------------------
    async def health_check(self, *, time_limit: float | None = None) -> dict[str, HealthStatus]:
        """Check every routed backend concurrently; keyed by queue, sorted.

        A backend that raises or does not answer within ``time_limit`` seconds
        (default ``health_timeout``) is reported ``unhealthy`` with the reason;
        the others are unaffected. Never raises for a backend's failure.
        """
        limit = self.health_timeout if time_limit is None else time_limit
        return await health_all([(q, b) for q, (b, _) in self._routes.items()], limit)

    async def stats(self, *, time_limit: float | None = None) -> dict[str, BackendStats | BackendError]:
        """Collect every routed backend's stats concurrently; keyed by queue, sorted.

        A backend that fails or does not answer within ``time_limit`` seconds
        (default ``stats_timeout``) is reported as its BackendError
        (OperationTimeoutError for a timeout); the others are unaffected. Never
        raises for a backend's failure.
        """
        limit = self.stats_timeout if time_limit is None else time_limit
        return await stats_all([(q, b) for q, (b, _) in self._routes.items()], limit)

    # -- lifecycle --------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        self._check_open("open")
        if self._stack is not None:
            raise RuntimeError("BackendManager is already entered")
        stack = contextlib.AsyncExitStack()
        tg = await stack.enter_async_context(anyio.create_task_group())
        self._owned.start_maintenance(tg)
        if self.home_check_interval > 0:
            tg.start_soon(self._watch_homes, name="queuestore homes")
        self._stack = stack
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        stack, self._stack = self._stack, None
        try:
            self._owned.stop_maintenance()
            self._homes_scope.cancel()
            if stack is not None:
                await stack.aclose()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close every owned backend (errors are logged, not raised). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._routes.clear()
        await self._owned.close_all()

    async def close(self) -> None:
        """Alias of :meth:`aclose`."""
        await self.aclose()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<BackendManager queues={self.list_queues()!r} backends={len(self._owned)} {state}>"

    # -- internals --------------------------------------------------------------------
    def _check_open(self, operation: str) -> None:
        if self.closed:
            raise BackendClosedError("manager", operation, "manager is closed")

    def _route(self, queue: str) -> tuple[QueueBackend, BackendConfig]:
        try:
            return self._routes[queue]
        except (KeyError, TypeError):
            raise QueueNotFoundError(f"no backend for queue {queue!r}") from None

    async def _create(self, config: BackendConfig, operation: str) -> QueueBackend:
        backend = await self._registry.create(config.type, config)
        if self.closed:  # closed while connecting
            with anyio.CancelScope(shield=True):
                await backend.aclose()
            raise BackendClosedError("manager", operation, "manager is closed")
        self._owned.adopt(backend)
        return backend

    async def _release(self, backend: QueueBackend) -> None:
        if any(b is backend for b, _ in self._routes.values()):
            return
        await self._owned.close(backend)

"""Following a queue to its new home, in a process that does not run the migration.

Once a migration seals the source (the ``home`` field of the queue's migration record),
every storing script of the source answers "moved to <home>" instead of storing. A
``BackendManager`` then follows, as a Redis Cluster client follows MOVED:

* a storing call that got the answer (``QueueMovedError``) is sent to the new home, and
  the manager routes the queue through a :class:`RoutingBackend` over the source and the
  home (new work to the home; dequeue drains the source first, then the home), so later
  calls go there too;
* :func:`watch_homes` (run by an entered manager) reads the records of its queues every
  ``home_check_interval`` seconds, so a process that only consumes follows as well, and
  a process started with a config that still names the source follows at once;
* while the migration runs, a follower's consumers lease from the source only (they
  drain it); they lease from the home too once the record says it completed -- so
  nothing the migrating process moved is consumed elsewhere before it verified it;
* when the record says the migration completed and the source holds nothing any more,
  the queue is routed to the home alone; when the seal is lifted (a rollback), back to
  the source (through the proxy turned round while jobs are in flight on the home).

Following is logged on the ``queuestore.migration`` logger at WARNING: the process's
config is stale and should name the new home.
"""

from __future__ import annotations

import functools
import logging
import weakref

import anyio
import msgspec

from queuestore._manager import BackendManager
from queuestore._models import BackendConfig
from queuestore.abc import MigrationSupport, QueueBackend
from queuestore.errors import ConfigurationError, QueueMovedError, QueueStoreError
from queuestore.migration._home import HomeDescriptor, describe
from queuestore.migration._models import MigrationPhase
from queuestore.migration._routing import RoutingBackend

__all__ = ["follow_home", "watch_homes"]

log = logging.getLogger("queuestore.migration")
_LOCKS: weakref.WeakKeyDictionary[BackendManager, dict[str, anyio.Lock]] = weakref.WeakKeyDictionary()


def _lock(manager: BackendManager, queue: str) -> anyio.Lock:
    return _LOCKS.setdefault(manager, {}).setdefault(queue, anyio.Lock())


def _place(d: HomeDescriptor) -> tuple[object, ...]:
    return (d.type, d.url, d.database, d.cluster_mode, tuple(d.cluster_addrs), d.key_prefix, d.namespace)


def home_config(
    manager: BackendManager, queue: str, source: BackendConfig, home: HomeDescriptor
) -> BackendConfig:
    """The config of ``queue``'s new home: a backend of the loaded config that is that store,
    else that type on the source's server (its credentials) under the home's key prefix.

    Raises:
        ConfigurationError: the home is on another server and no backend of the config is it
            (field ``queues.<queue>``; the home is named, without secrets).
    """
    if manager.config is not None:
        for cfg in manager.config.backends.values():
            if _place(describe(cfg)) == _place(home):
                return msgspec.structs.replace(cfg, queue=queue, options=dict(cfg.options))
    here = describe(source)
    same = (here.url, here.database, here.cluster_mode, here.cluster_addrs)
    if same == (home.url, home.database, home.cluster_mode, home.cluster_addrs) and home.url:
        cfg = manager.resolve_backend_config(home.type, like=source, queue=queue)
        if home.key_prefix:
            cfg.options["key_prefix"] = home.key_prefix
        return cfg
    raise ConfigurationError(
        f"queues.{queue}",
        f"queue {queue!r} moved to {home.label()}, which this config does not name: add that backend "
        "to the config and point the queue at it",
    )


async def follow_home(
    manager: BackendManager, queue: str, err: QueueMovedError | None = None
) -> QueueBackend:
    """Route ``queue`` through a RoutingBackend over its current backend and its new home;
    return what serves the queue now (also when another task followed first).

    Raises:
        ConfigurationError: the home is unknown to this config (see :func:`home_config`).
        BackendError: the home cannot be reached, or the record cannot be read.
    """
    async with _lock(manager, queue):
        current, cfg = manager.get_backend(queue), manager.get_backend_config(queue)
        if isinstance(current, RoutingBackend):
            return current
        if not isinstance(current, MigrationSupport):
            if err is not None:
                raise err
            return current
        reply = await current.migration_record("read")
        raw = reply.fields.get("home") or (err.home if err is not None else "")
        if not raw:
            return current
        home = HomeDescriptor.decode(raw)
        target_cfg = home_config(manager, queue, cfg, home)
        target = await manager.open_backend(target_cfg)
        proxy = RoutingBackend(
            queue, current, target, source_config=cfg, target_config=target_cfg,
            migration_id=reply.fields.get("mid", ""),
        )  # fmt: skip
        proxy.follower = True
        # consumers here drain the source, and lease from the home once the migration completed
        # (the migrating process verifies what it moved: nothing of it is consumed elsewhere first)
        proxy.lease_from_target = reply.fields.get("phase") == MigrationPhase.COMPLETED
        target.follow_moved = functools.partial(_moved_back, proxy)
        await proxy.open()
        await manager.switch_backend(queue, proxy, cfg)
        log.warning(
            "queue %s moved to %s (migration %s, %s): this process's config still names %s -- "
            "following; update the config",
            queue, home.label(), reply.fields.get("mid", "?"), reply.fields.get("phase", "?"),
            cfg.name or cfg.type,
        )  # fmt: skip
        return proxy


async def _moved_back(proxy: RoutingBackend, err: QueueMovedError) -> QueueBackend:
    """The home refused a write because a rollback sent the queue back: write to the source.

    Raises:
        QueueMovedError: ``err``, when the home moved on elsewhere (one hop is followed).
    """
    try:
        back = _place(HomeDescriptor.decode(err.home)) == _place(describe(proxy.source_config))
    except msgspec.DecodeError:
        back = False
    if not back:
        raise err
    proxy.lease_from_target = True
    if not proxy.rolled_back:
        proxy.rolled_back = True
        log.warning(
            "queue %s: the move to %s was undone; back to %s", proxy.queue, proxy.target.name, err.home
        )
    return proxy.source


async def _settle(manager: BackendManager, queue: str, proxy: RoutingBackend) -> None:
    """For a follower proxy: route to the home alone once the migration completed and the
    source is empty; back to the source once the seal is lifted (a rollback)."""
    source = proxy.source
    if proxy.switched or proxy.closed or source.closed or not isinstance(source, MigrationSupport):
        return
    fields = (await source.migration_record("read")).fields
    if not fields.get("home"):
        proxy.lease_from_target = True
        if not proxy.rolled_back:
            proxy.rolled_back = True  # new work to the source; the home's leases finish there
            log.warning(
                "queue %s: the move to %s was undone; back to %s", queue, proxy.target.name, source.name
            )
        if (await proxy.target.stats()).in_flight == 0 and await proxy.target.length() == 0:
            await manager.switch_backend(queue, source, proxy.source_config)
        return
    if fields.get("phase") != MigrationPhase.COMPLETED:
        return
    proxy.lease_from_target = True
    st = await source.stats()
    if st.in_flight == 0 and st.queue_depth == 0 and st.delayed == 0 and st.dead == 0:
        proxy.switched = True
        await manager.switch_backend(queue, proxy.target, proxy.target_config)
        log.warning("queue %s: now served by its new home %s alone", queue, proxy.target.name)


async def watch_homes(manager: BackendManager, interval: float) -> None:
    """Every ``interval`` seconds, follow the queues whose store says they moved and settle
    the followed ones (see the module docstring); failures are logged and tried again."""
    while not manager.closed:
        for queue in manager.list_queues():
            try:
                backend = manager.get_backend(queue)
                if isinstance(backend, RoutingBackend):
                    if backend.follower:
                        await _settle(manager, queue, backend)
                elif isinstance(backend, MigrationSupport) and not backend.closed:
                    await follow_home(manager, queue)
            except QueueStoreError as exc:
                log.warning("queue %s: checking where it lives failed: %s", queue, exc)
        await anyio.sleep(interval)

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
* a follower remembers the migration id it follows; which side its consumers lease from
  is read from the records of both sides (``queuestore.migration._lease_guard``): never
  from the target of a run -- that one, a new run after a rollback, or a run back the
  other way -- before that run completed, so nothing a migrating process moved is
  consumed elsewhere before it verified it;
* new work goes where the stores say (a refused write names the home); the record of
  the migration it follows saying ``rolled_back`` -- not a seal lifted or pointing back --
  sends it to the source; when the run it follows completed and the source holds nothing
  any more, the queue is routed to the home alone; after a rollback, or a run back that
  completed, to the source alone once the target holds nothing.

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
from queuestore._record import RecordReply
from queuestore.abc import MigrationSupport, QueueBackend
from queuestore.errors import ConfigurationError, QueueMovedError, QueueStoreError
from queuestore.migration._home import HomeDescriptor, describe, same_place
from queuestore.migration._lease_guard import LeaseGuard, runs_into
from queuestore.migration._models import MigrationPhase
from queuestore.migration._routing import RoutingBackend

__all__ = ["follow_home", "watch_homes"]

log = logging.getLogger("queuestore.migration")
_LOCKS: weakref.WeakKeyDictionary[BackendManager, dict[str, anyio.Lock]] = weakref.WeakKeyDictionary()


def _lock(manager: BackendManager, queue: str) -> anyio.Lock:
    return _LOCKS.setdefault(manager, {}).setdefault(queue, anyio.Lock())


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
            if same_place(describe(cfg), home):
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
    return what serves the queue now (also when another task followed first). For a queue
    already followed, ``err`` (one side refused a write) turns its writes to the other side.

    Raises:
        ConfigurationError: the home is unknown to this config (see :func:`home_config`).
        BackendError: the home cannot be reached, or the record cannot be read.
        QueueMovedError: ``err``, when the home it names is neither side of a followed queue.
    """
    async with _lock(manager, queue):
        current, cfg = manager.get_backend(queue), manager.get_backend_config(queue)
        if isinstance(current, RoutingBackend):
            return _redirect(current, err) if current.follower and err is not None else current
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
        # which side it leases from is read from the records (never from a run's target
        # before that run completed: the migrating process verifies what it moved)
        proxy.guard = LeaseGuard(proxy)
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


def _redirect(proxy: RoutingBackend, err: QueueMovedError) -> QueueBackend:
    """The side a refused write of a follower goes to: the one ``err`` names as the home.
    Later writes go there first too (``rolled_back`` means: new work to the source).

    Raises:
        QueueMovedError: ``err``, when it names neither side (one hop is followed).
    """
    try:
        home = HomeDescriptor.decode(err.home)
    except msgspec.DecodeError:
        raise err from None
    if same_place(home, describe(proxy.source_config)):
        proxy.rolled_back = True
        return proxy.source
    if same_place(home, describe(proxy.target_config)):
        proxy.rolled_back = False
        return proxy.target
    raise err


async def _moved_back(proxy: RoutingBackend, err: QueueMovedError) -> QueueBackend:
    """The home refused a write (a rollback, or a run back): write where it says.

    Raises:
        QueueMovedError: ``err``, when the home moved on elsewhere (one hop is followed).
    """
    return _redirect(proxy, err)


async def _records(proxy: RoutingBackend) -> tuple[RecordReply | None, RecordReply | None]:
    """The migration records in the source's and in the target's store (None: a store that
    keeps none, or is closed)."""
    sides: list[RecordReply | None] = []
    for b in (proxy.source, proxy.target):
        if isinstance(b, MigrationSupport) and not b.closed:
            sides.append(await b.migration_record("read"))
        else:
            sides.append(None)
    return sides[0], sides[1]


async def _empty(b: QueueBackend) -> bool:
    st = await b.stats()
    return st.in_flight == 0 and st.queue_depth == 0 and st.delayed == 0 and st.dead == 0


async def _settle(manager: BackendManager, queue: str, proxy: RoutingBackend) -> None:
    """For a follower proxy over X (source) and Y (target), from the two records: where new
    work goes, and when one side alone serves the queue (see docs/migration.md)."""
    if proxy.switched or proxy.closed or proxy.source.closed or proxy.target.closed:
        return
    rx, ry = await _records(proxy)
    fx, fy = dict(rx.fields) if rx else {}, dict(ry.fields) if ry else {}
    x, y = describe(proxy.source_config), describe(proxy.target_config)
    mine = fx.get("mid") == proxy.migration_id
    if (mine and fx.get("phase") == MigrationPhase.ROLLED_BACK) or _done_into(fy, x):
        # the run it follows was rolled back, or a run back Y -> X completed: X is home
        if not proxy.rolled_back:
            proxy.rolled_back = True
            log.warning("queue %s: served by %s again", queue, proxy.source.name)
        if await _empty(proxy.target):
            await manager.switch_backend(queue, proxy.source, proxy.source_config)
        return
    if runs_into(fx, y):  # a run X -> Y (again, after a rollback): new work to Y
        if proxy.rolled_back:
            proxy.rolled_back = False
            log.warning("queue %s: migrating to %s again; following", queue, proxy.target.name)
        return
    if runs_into(fy, x):  # a run back Y -> X: new work to X; the guard drains Y
        proxy.rolled_back = True
        return
    if rx is not None and _done_into(fx, y) and await _empty(proxy.source):
        proxy.switched = True
        manager.note_moved_here(queue, rx)  # its status, for reads here (Y keeps no record of it)
        await manager.switch_backend(queue, proxy.target, proxy.target_config)
        log.warning("queue %s: now served by its new home %s alone", queue, proxy.target.name)


def _done_into(fields: dict[str, str], side: HomeDescriptor) -> bool:
    """Whether ``fields`` is the record of a completed run whose home is ``side``."""
    raw = fields.get("home")
    if fields.get("phase") != MigrationPhase.COMPLETED or not raw:
        return False
    try:
        return same_place(HomeDescriptor.decode(raw), side)
    except msgspec.DecodeError:
        return False


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

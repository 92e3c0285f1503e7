"""Rolling back a migration that did not complete (failed, cancelled, or crashed).

1. Held jobs go back to the source (``migration_restore``), in their old state and order.
2. Jobs already in the target (moved ones and new work enqueued there meanwhile)
   come back to the source by the same hold / import / release protocol, reversed
   (migration id ``<id>-rollback``), so a crash during the rollback loses and
   duplicates nothing either: re-running it finishes it. A job that was both held
   and in the target (a crash between import and release) ends up once, in the source.
   An id the source stores already with other content is a conflict: the rollback
   stops (MigrationError naming the ids), both copies kept, nothing overwritten.
3. The queue is routed home to the source. When jobs are still in flight on the
   target, the routing proxy stays in front of the queue, turned round
   (``RoutingBackend.rolled_back``): new work goes to the source, acks through
   ``manager.get_backend(queue)`` reach whichever side holds the lease, and its
   maintenance loop brings what comes back to the target (nacked, lease expired)
   over to the source. Running the rollback again once those jobs are done routes
   the queue to the source alone and closes the target.
"""

from __future__ import annotations

import functools
import time

import anyio

from queuestore._manager import BackendManager
from queuestore.abc import MigrationSupport, QueueBackend
from queuestore.errors import BackendError, MigrationError
from queuestore.migration._home import describe
from queuestore.migration._models import MigrationOptions, MigrationPhase, MigrationStatus
from queuestore.migration._protocol import MOVABLE, Ledger, finish_held, move_batch, spi
from queuestore.migration._record import RecordKeeper, rehome
from queuestore.migration._resolve import Endpoints, resolve
from queuestore.migration._routing import RoutingBackend

__all__ = ["rollback"]


async def _move_back(target: QueueBackend, source: QueueBackend, rmid: str, batch: int) -> Ledger:
    ledger = Ledger()
    await finish_held(target, source, rmid, batch, ledger, on_corrupt="dead_letter")
    for state in MOVABLE:
        while jobs := await spi(target).migration_hold(rmid, state, batch):
            await move_batch(target, source, rmid, jobs, ledger, on_corrupt="dead_letter")
    return ledger


async def rollback(manager: BackendManager, queue: str, options: MigrationOptions) -> MigrationStatus:
    """Undo an incomplete migration of ``queue`` (see the module docstring).

    Returns:
        A status in phase ``rolled_back`` whose messages say what was done and which
        side holds what.

    Raises:
        MigrationError: in phase "rolled_back" when a backend fails or an id conflicts (run
            it again after fixing that); in phase "validation" when the queue or backends
            cannot be resolved.
    """
    options.check()
    ep = resolve(manager, queue, options)
    src, mid = ep.source, ep.migration_id
    status = MigrationStatus(
        migration_id=mid,
        queue=queue,
        source_backend=ep.source_config.name or ep.source_config.type,
        target_backend=ep.target_config.name or ep.target_config.type,
        phase=MigrationPhase.ROLLED_BACK,
    )
    keeper = RecordKeeper(spi(src), queue, mid, options, ep.target_config)
    await keeper.claim(status)  # one owner: no migration of the queue runs meanwhile
    try:
        await keeper.unseal(status)  # writes go to the source again, in every process
        return await _rollback(manager, queue, options, ep, status, keeper)
    finally:
        await keeper.release_shielded(status, 10.0)


async def _rollback(
    manager: BackendManager,
    queue: str,
    options: MigrationOptions,
    ep: Endpoints,
    status: MigrationStatus,
    keeper: RecordKeeper,
) -> MigrationStatus:
    src, mid, rmid, batch = ep.source, ep.migration_id, f"{ep.migration_id}-rollback", options.batch_size
    proxy, opened = ep.proxy, ep.proxy is None
    target = proxy.target if proxy is not None else await manager.open_backend(ep.target_config)
    if isinstance(target, MigrationSupport):  # writes that reach the target go to the source
        await rehome(target, queue, describe(ep.source_config), keeper.owner)
    lock = proxy.sweep_lock if proxy is not None else anyio.Lock()
    async with lock:  # no sweep meanwhile; released only once the queue's route is settled
        try:
            if proxy is not None:  # no new lease on the target can slip past the count below
                await proxy.stop_target_leasing()
            restored = await spi(src).migration_restore(mid)
            ledger = await _move_back(target, src, rmid, batch)
            left = (await target.stats()).in_flight
        except (BackendError, MigrationError) as exc:
            if proxy is not None:
                proxy.lease_from_target = True
            if opened:
                await manager.close_backend(target)
            why = exc.message if isinstance(exc, MigrationError) else str(exc)
            raise MigrationError("rolled_back", f"rollback stopped (run it again): {why}") from exc
        proxy = await _route_home(manager, queue, ep, target, proxy, left, rmid, batch)
    back = dict(ledger.by_state)
    moved = sum(back.values())
    status.messages.append(f"put {restored} held jobs back on the source")
    status.messages.append(f"moved {moved} jobs back from the target to the source ({back})")
    if ledger.skipped:
        status.messages.append(
            f"{ledger.skipped} jobs were on both sides, identical: kept once, on the source"
        )
    status.moved_by_state = back
    if proxy is not None:
        status.messages.append(
            f"{left} jobs in flight on the target stay there until acked (through manager.get_backend, "
            "on either side) or back, which brings them to the source; run rollback again then to "
            "finish; every other job is on the source"
        )
    else:
        status.messages.append("every job is on the source; the target is closed")
    status.migrated_jobs = status.total_jobs = moved + restored
    status.skipped_jobs = ledger.skipped
    status.failed_jobs = ledger.corrupt
    status.total_jobs += ledger.skipped + ledger.corrupt
    status.progress = 100.0
    status.finished_at = status.updated_at = time.time()
    return status


async def _route_home(
    manager: BackendManager,
    queue: str,
    ep: Endpoints,
    target: QueueBackend,
    proxy: RoutingBackend | None,
    left: int,
    rmid: str,
    batch: int,
) -> RoutingBackend | None:
    """Route ``queue`` to the source: alone when nothing is ``left`` in flight on the target
    (closing the target and the proxy), else through the proxy turned round. Returns the
    proxy that stays, or None."""
    if left:
        if proxy is None:
            proxy = RoutingBackend(
                queue, ep.source, target, source_config=ep.source_config,
                target_config=ep.target_config, migration_id=ep.migration_id,
            )  # fmt: skip
            await proxy.open()
        proxy.rolled_back, proxy.source_dequeue, proxy.switched = True, True, False
        proxy.lease_from_target = True
        proxy.sweeper = functools.partial(_sweep, proxy, rmid, batch)
        await manager.switch_backend(queue, proxy, ep.source_config)
        return proxy
    await manager.switch_backend(queue, ep.source, ep.source_config)
    if proxy is not None:  # a stale reference to the proxy now fails loudly (BackendClosedError)
        proxy.sweeper = None
        await manager.close_backend(proxy)
    await manager.close_backend(target)
    return None


async def _sweep(proxy: RoutingBackend, rmid: str, batch: int) -> None:
    """Bring what came back to a rolled-back proxy's target over to its source."""
    async with proxy.sweep_lock:
        await _move_back(proxy.target, proxy.source, rmid, batch)

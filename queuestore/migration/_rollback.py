"""Rolling back a migration that did not complete (failed, cancelled, or crashed).

1. Held jobs go back to the source (``migration_restore``), in their old state and order.
2. Jobs already in the target (moved ones and new work enqueued there meanwhile)
   come back to the source by the same hold / import / release protocol, reversed
   (migration id ``<id>-rollback``), so a crash during the rollback loses and
   duplicates nothing either: re-running it finishes it. A job that was both held
   and in the target (a crash between import and release) ends up once, in the source.
3. The queue is routed to the source again. Jobs in flight on the target stay
   there (their holders can still ack them through the proxy object they hold);
   the status says how many.
"""

from __future__ import annotations

import time

from queuestore._manager import BackendManager
from queuestore.abc import QueueBackend
from queuestore.errors import BackendError, MigrationError
from queuestore.migration._models import MigrationOptions, MigrationPhase, MigrationStatus
from queuestore.migration._protocol import MOVABLE, Ledger, finish_held, move_batch, spi
from queuestore.migration._resolve import resolve

__all__ = ["rollback"]


async def _move_back(target: QueueBackend, source: QueueBackend, rmid: str, batch: int) -> dict[str, int]:
    ledger = Ledger()
    await finish_held(target, source, rmid, batch, ledger, on_corrupt="dead_letter")
    for state in MOVABLE:
        while jobs := await spi(target).migration_hold(rmid, state, batch):
            await move_batch(target, source, rmid, jobs, ledger, on_corrupt="dead_letter")
    return dict(ledger.by_state)


async def rollback(manager: BackendManager, queue: str, options: MigrationOptions) -> MigrationStatus:
    """Undo an incomplete migration of ``queue`` (see the module docstring).

    Returns:
        A status in phase ``rolled_back`` whose messages say what was done.

    Raises:
        MigrationError: in phase "rolled_back" when a backend fails (re-run to finish);
            in phase "validation" when the queue or backends cannot be resolved.
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
    opened = ep.proxy is None
    target = ep.proxy.target if ep.proxy is not None else await manager.open_backend(ep.target_config)
    try:
        restored = await spi(src).migration_restore(mid)
        back = await _move_back(target, src, f"{mid}-rollback", options.batch_size)
        left = (await target.stats()).in_flight
    except BackendError as exc:
        if opened:
            await manager.close_backend(target)
        raise MigrationError("rolled_back", f"rollback interrupted (run it again): {exc}") from exc
    await manager.switch_backend(queue, src, ep.source_config)
    status.messages.append(f"put {restored} held jobs back on the source")
    status.messages.append(f"moved {sum(back.values())} jobs back from the target to the source ({back})")
    status.moved_by_state = back
    if left:
        status.messages.append(
            f"{left} jobs in flight on the target were left there (ack them through the migration's proxy; "
            "run rollback again for any that come back)"
        )
    else:  # a stale reference to the proxy now fails loudly (BackendClosedError) on the target side
        await manager.close_backend(target)
    status.migrated_jobs = sum(back.values()) + restored
    status.progress = 100.0
    status.finished_at = status.updated_at = time.time()
    return status

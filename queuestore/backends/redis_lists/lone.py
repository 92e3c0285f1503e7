"""A lone ``enqueue()`` of the redis-lists backend: one ready job stored by ``enqueue_one.lua``.

``enqueue.lua`` gets the whole key block (24 keys) and, as every lists script, the library it
reaches: storing any mix of jobs, it reaches the sweep and with it nearly all of the library.
A lone ready job without a TTL or an idempotency key touches 8 keys when nothing is due and
needs 5 arguments, and its script is written out without the library's functions (Redis would
make each of them a closure on every call): the server parses 16 keys and 5 arguments fewer and
runs far less Lua per call (see ``docs/benchmarks.md``, "A cheaper lone call"). When the queue's
sweep is due, or old call records wait to be pruned, ``enqueue_one.lua`` declines without
storing or recording anything, and the same call (the same call id) goes to ``enqueue.lua``,
which sweeps first: the ready order, idempotency and the call record are the full script's.
"""

from __future__ import annotations

from queuestore.backends.redis_lists.batches import StoreRow, store
from queuestore.backends.redis_lists.context import CallSpec, ListsContext

__all__ = ["store_lone"]


async def store_lone(ctx: ListsContext, row: StoreRow) -> bool:
    """Store one validated row (:func:`~.batches.store_rows`) of ``enqueue``: True when stored,
    False when its id was already stored. A row with an idempotency key, a TTL or an
    ``available_at`` goes to ``enqueue.lua`` directly (as a batch of one).

    Raises:
        QueueMovedError: a migration sealed the queue (nothing stored).
        OutcomeUnknownError: no reply came back, even to the retries with the same call id.
        BackendError: the store failed.
    """
    key, priority, avail, expires = row[3], row[4], row[5], row[6]
    if key or avail or expires:
        return (await store(ctx, "enqueue", [row], importing=False))[0]
    cid = ctx.call_id()
    lean: CallSpec = ("enqueue_one", ctx.layout.lone_blocks[priority], [cid, *row[:3], priority])

    def full() -> CallSpec:  # only when the lean script declines
        return ("enqueue", ctx.block, ["enqueue", float(ctx.options.idempotency_window), cid, *row])

    reply = await ctx.mutate_or_full("enqueue", lean, full)
    stored = bool(int(reply[0]))
    ctx.metrics.record("enqueue", int(stored))
    return stored

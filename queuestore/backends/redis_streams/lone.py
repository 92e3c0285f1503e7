"""A lone ``enqueue()`` of the redis-streams backend: one ready job stored by ``enqueue_one.lua``.

``enqueue.lua`` first makes ready what is due (expired leases, due delayed jobs): its Lua reaches
the whole streams library, whose top level Redis runs on every call. For one ready job without a
TTL, due time or idempotency key, ``enqueue_one.lua`` reads whether anything is due (the same two
range reads ``enqueue.lua`` starts with) and stores the job with far less of the library (a body
of 5,836 bytes against 15,209); when something is due it declines without storing or recording
anything, and the same call (the same call id) goes to ``enqueue.lua``: the ready order,
idempotency and the call record are the full script's (see ``docs/benchmarks.md``, "A cheaper
lone call").
"""

from __future__ import annotations

from typing import Any

from queuestore.backends.redis_streams.layout import ms
from queuestore.backends.redis_streams.store import StreamsStore

__all__ = ["enqueue_lone"]


async def enqueue_lone(store: StreamsStore, row: list[Any]) -> bool:
    """Store one :func:`~.layout.job_args` row: True when stored, False when the job (or its
    idempotency key) was already there. A row with a TTL, a due time, an idempotency key or
    another state goes to ``enqueue.lua`` directly.

    Raises:
        QueueMovedError: a migration sealed the queue (nothing stored).
        OutcomeUnknownError: no reply came back, even to the retries with the same call id.
        BackendError: the store failed.
    """
    if row[5] or row[6] or row[7] or row[8] != "ready":
        return (await store.enqueue_rows("enqueue", [row]))[0]
    keys = store.store_keys
    window = ms(float(store.options.idempotency_window))
    args: list[Any] = [store.call_id(), window, 1, *row, int(store.retain), store.queue]
    ok = False
    try:
        out = await store.run_mutating("enqueue", "enqueue_one", keys, args)
        if out == -1:
            out = await store.run_mutating("enqueue", "enqueue", keys, args)
        ok = True
    finally:
        store.calls.settle(args, ok)
    return bool(out[0])

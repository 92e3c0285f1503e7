"""A lone ``enqueue()`` of the redis-streams backend: one ready job stored by ``enqueue_one.lua``.

``enqueue.lua`` first makes ready what is due (expired leases, due delayed jobs): its Lua reaches
the whole streams library, whose top level Redis runs on every call. For one ready job without a
TTL, due time or idempotency key, ``enqueue_one.lua`` reads whether anything is due (the same two
range reads ``enqueue.lua`` starts with) and stores the job with 8 keys and 6 arguments (against
13 and 14), written out without the library's functions (Redis would make each of them a closure
on every call); when something is due, or old call records wait to be pruned, it declines
without storing or recording anything, and the same call (the same call id) goes to
``enqueue.lua``: the ready order, idempotency and the call record are the full script's (see
``docs/benchmarks.md``, "A cheaper lone call").
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
    cid = store.call_id()
    ok = False
    try:
        out = await store.run_mutating("enqueue", "enqueue_one", store.lone_keys, [cid, *row[:5]])
        if out == -1:
            window = ms(float(store.options.idempotency_window))
            args: list[Any] = [cid, window, 1, *row, int(store.retain), store.queue]
            out = await store.run_mutating("enqueue", "enqueue", store.store_keys, args)
        ok = True
    finally:
        store.calls.settle((cid,), ok)
    return bool(out[0])

"""The operator side of ``redis-streams``: redrive dead letters, purge the jobs of one state,
delete one job in any state, and the dead letters' retention -- the ``dlq`` script
(``lua/dlq.lua``), one call per page of at most :data:`PAGE` jobs, each with a call id.

``ALL`` walks a state page by page, up to the last entry that existed when the walk began, so
it ends while jobs keep coming. With several consumer groups (fan-out) a dead letter names the
group it died in, and a redrive hands it back to that group only; ``ALL`` redrives every
group's dead letter of a job, a redrive by id the one the job's index points at (its latest).

A redrive to another queue is a ``move`` of a dead letter: one script on the same slot, else
the cross-slot steps of :func:`~.settle.move` (park, store in the target, forget), limited to
dead letters and with ``retry_count`` reset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.crc import key_slot

from queuestore._admin_args import PAGE, delete_id, purge_state, redrive_target, selected_ids
from queuestore._args import text, utf8_or_none
from queuestore._job import AllJobs, JobState
from queuestore.backends._redis.keys import validate_queue_name
from queuestore.backends.redis_streams import lookup
from queuestore.backends.redis_streams.layout import (
    DECODE_ERRORS,
    entry_job,
    fields_map,
    job_args,
    ms,
)
from queuestore.backends.redis_streams.settle import settle_args
from queuestore.backends.redis_streams.store import StreamsStore
from queuestore.errors import ConfigurationError, InvalidJobError

__all__ = ["PAGE", "delete", "prune_dead", "purge", "redrive"]


async def _pages(store: StreamsStore, op: str, args: list[Any], keys: list[str]) -> int:
    """Run an ``ALL`` walk of the dlq script: page after page until its cursor is done."""
    total, cursor, upto = 0, "", ""
    while True:
        res = await store.mutate(
            op, "dlq", keys, [op, store.call_id(), store.queue, *args, PAGE, cursor, upto]
        )
        total += int(res[0])
        cursor, upto = text(res[1]), text(res[2])
        if not cursor:
            return total


async def redrive(store: StreamsStore, job_ids: Sequence[str] | AllJobs, to_queue: str | None) -> int:
    """Dead letters back to ready, here or in ``to_queue``: ``retry_count`` 0, attempts and
    last error kept, at the tail of the stream.

    Returns:
        How many were redriven (ids that are not dead here are not counted).

    Raises:
        InvalidJobError: bad ids (``job_ids``) or a bad target (``to_queue``).
        OutcomeUnknownError, BackendError.
    """
    ids = selected_ids(job_ids)
    keys = store.keys.core()
    to_queue = redrive_target(to_queue, store.queue)
    if to_queue is not None:
        try:
            validate_queue_name(to_queue, "to_queue")
        except ConfigurationError as exc:
            raise InvalidJobError("to_queue", exc.message) from None
        tk = store.target_keys(to_queue)
        if store.conn.cluster and key_slot(tk.stream.encode()) != key_slot(store.keys.stream.encode()):
            await lookup.refuse_if_sealed(store, tk, "redrive")
            return await _redrive_across(store, ids, to_queue)
        keys = [*keys, tk.stream, tk.idx, tk.ttl, tk.counters, tk.record]
    if ids is None:
        n = await _pages(store, "redrive", [], keys)
    else:
        n = 0
        for i in range(0, len(ids), PAGE):
            args = ["redrive", store.call_id(), store.queue, PAGE, "", "", *ids[i : i + PAGE]]
            n += int((await store.mutate("redrive", "dlq", keys, args))[0])
    store.metrics.record("redrive", n)
    return n


async def _redrive_across(store: StreamsStore, ids: list[str] | None, to_queue: str) -> int:
    """Redrive to a queue on another cluster slot, job by job through the cross-slot move steps
    (``ALL``: the dead letters' ids, read a page at a time up to the last one when it began)."""
    if ids is not None:
        return sum([await _move_dead(store, job_id, to_queue) for job_id in ids])
    last = await store.call("redrive", "XREVRANGE", store.keys.dead, "+", "-", "COUNT", 1)
    if not last:
        return 0
    upto, start, n = text(last[0][0]), "-", 0
    while True:
        page = await store.call("redrive", "XRANGE", store.keys.dead, start, upto, "COUNT", PAGE)
        for eid, fields in page:
            job_id = utf8_or_none(fields_map(fields).get("j"))
            if job_id is not None:  # an id that is not UTF-8 stays dead here: no queue can take it
                n += await _move_dead(store, job_id, to_queue)
            start = "(" + text(eid)
        if len(page) < PAGE:
            return n


async def _move_dead(store: StreamsStore, job_id: str, to_queue: str) -> int:
    """One dead letter to ``to_queue`` on another slot: 1 if it was dead here and moved, else 0
    (a job whose id the target stores already is put back among the dead letters)."""
    if await lookup.stored(store, store.target_keys(to_queue), job_id):
        return 0
    guard = [store.group, "", "", ""]
    res = await store.mutate(
        "redrive", "settle", store.keys.core(), [*settle_args(store, "moveout", job_id, guard), "dead"]
    )
    if int(res[0]) != 1:
        return 0
    fields = fields_map(res[1])
    try:
        moved = entry_job(store.codec, to_queue, fields, JobState.READY)
        moved.origin_queue, moved.dead_reason, moved.dead_at, moved.retry_count = store.queue, None, None, 0
        row = job_args(store.codec, to_queue, moved, idem=False)
    except DECODE_ERRORS:
        row = _raw_row(job_id, fields)
    target = store.target_keys(to_queue)
    if not (await store.enqueue_rows("redrive", [row], target, window_ms=0))[0]:
        # the target stores this id already: the job stays dead here
        await store.mutate(
            "redrive", "dlq", store.keys.core(), ["undo", store.call_id(), store.queue, job_id]
        )
        return 0
    await store.mutate("redrive", "settle", store.keys.core(), settle_args(store, "moved", job_id, guard))
    return 1


def _raw_row(job_id: str, fields: dict[str, bytes]) -> list[Any]:
    """The enqueue row of a dead letter whose body does not decode: its bytes as they are (the
    target's reads treat it as the garbage it is, dead-lettering it there), never lost on the way."""

    def count(name: str) -> int:
        raw = fields.get(name, b"0")
        return int(raw) if raw.isdigit() else 0

    return [job_id, fields.get("b", b""), 0, count("m"), count("a"), count("x"), 0, "", "ready"]


async def purge(store: StreamsStore, state: JobState, job_ids: Sequence[str] | AllJobs) -> int:
    """Remove READY, DELAYED or DEAD jobs (by id, or ``ALL`` of that state); removed jobs are
    gone (no state, not counted as acked), their entries deleted.

    Returns:
        How many were removed (ids not in ``state`` here are not counted).

    Raises:
        InvalidJobError: ``state`` is IN_FLIGHT or not a JobState (``state``); bad ids (``job_ids``).
        OutcomeUnknownError, BackendError.
    """
    name = purge_state(state).value
    ids = selected_ids(job_ids)
    keys = store.keys.core()
    if ids is None:
        n = await _pages(store, "purge", [name], keys)
    else:
        n = 0
        for i in range(0, len(ids), PAGE):
            args = ["purge", store.call_id(), store.queue, name, PAGE, "", "", *ids[i : i + PAGE]]
            n += int((await store.mutate("purge", "dlq", keys, args))[0])
    store.metrics.record("purge", n)
    return n


async def delete(store: StreamsStore, job_id: str) -> bool:
    """Remove one job in whatever state it is (a leased one too: its holder's later ack, nack
    or extend gets LeaseLostError until the lease's deadline).

    Returns:
        True if it was stored here. A job held by a migration or in the middle of a cross-slot
        move is not removed (False).

    Raises:
        InvalidJobError: ``job_id`` is not a non-empty str (``job_id``).
        OutcomeUnknownError, BackendError.
    """
    args = ["delete", store.call_id(), store.queue, delete_id(job_id)]
    res = await store.mutate("delete", "dlq", store.keys.core(), args)
    return int(res[0]) == 1


async def prune_dead(store: StreamsStore, retention: float, most: int, batch: int) -> int:
    """Drop dead letters older than ``retention`` seconds (0: no age limit) and, oldest first,
    beyond ``most`` (0: no count limit); at most ``batch`` per script call, calls repeated
    while a call drops a full batch.

    Returns:
        How many were dropped (counted in ``BackendStats.total_dead_dropped``).

    Raises:
        BackendError: the store failed.
    """
    if retention <= 0 and most <= 0:
        return 0
    total = 0
    while True:
        args = ["prune", "", store.queue, ms(retention), most, batch]
        n = int((await store.script("prune_dead", "dlq", store.keys.core(), args))[0])
        total += n
        if n < batch:
            return total

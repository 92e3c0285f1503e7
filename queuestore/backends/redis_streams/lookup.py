"""Lookup by id (``get_jobs``) of the ``redis-streams`` backend.

One read-only script (``lua/lookup.lua``, flag ``no-writes``) per 500 ids, the
scripts pipelined: one round trip for up to ``500 * pipeline_size`` ids. Every key it reads
is one of the queue's standard keys (declared, under the queue's hash tag), so it runs under
strict keys and on a cluster. Each id is resolved through the index (``idx``) to its place:

* a stream entry: in flight when a group has it pending (the backend's own group first; the
  job then carries the lease token ``dequeue`` gave, the lease deadline and ``started_at``),
  else ready;
* delayed (``available_at`` = its due time), dead;
* held by a migration: the state it was held from (held jobs are also parked under their id,
  so the lookup needs no migration id);
* moving (a cross-slot ``move`` under way): the state it left, until the move finishes.

Jobs are reported as stored: a delayed job that came due, or a lease past its deadline, shows
as delayed / in flight until a sweep promotes or reclaims it. Acked, expired and never enqueued
ids are None, and so is a waiting (ready or delayed) job past its TTL, which the next sweep
drops. Garbage -- a body or meta that does not decode, or an index value no script writes --
is never hidden: :class:`~queuestore.errors.SerializationError` is raised naming the job ids.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from queuestore._args import checked_job_ids, text
from queuestore._job import Job, JobState
from queuestore.backends._redis.scripts import ScriptCall
from queuestore.backends.redis_streams.layout import (
    DECODE_ERRORS,
    LeaseToken,
    StreamKeys,
    entry_job,
    fields_map,
    parked_fields,
)
from queuestore.backends.redis_streams.store import StreamsStore
from queuestore.errors import QueueMovedError, SerializationError

__all__ = ["LOOKUP_BATCH", "get_jobs", "origin_of", "refuse_if_sealed", "stored"]

#: ids per script call
LOOKUP_BATCH = 500
_STATES = {s.value: s for s in JobState}


async def get_jobs(store: StreamsStore, job_ids: Sequence[str]) -> list[Job | None]:
    """Look jobs up by id in any state (see the module docstring for what each reads as).

    Returns:
        One entry per id, in the given order: the job with ``state`` set (a held job:
        the state it was held from), or None when it is not stored.

    Raises:
        InvalidJobError: ``job_ids`` is not a sequence of str.
        SerializationError: a stored entry is garbage (the job ids are named).
        BackendError: the store failed.
    """
    store.check_open("get_jobs")
    ids = checked_job_ids(job_ids)
    if not ids:
        return []
    keys = store.keys.core()
    calls = [
        ScriptCall("lookup", keys, [store.group, *ids[i : i + LOOKUP_BATCH]])
        for i in range(0, len(ids), LOOKUP_BATCH)
    ]
    replies: list[Any] = [r for part in await store.scripts("get_jobs", calls) for r in part]
    out: list[Job | None] = []
    garbage: list[tuple[str, str]] = []
    for job_id, reply in zip(ids, replies, strict=True):
        try:
            out.append(_located(store, job_id, reply))
        except DECODE_ERRORS as exc:
            garbage.append((job_id, f"{exc}"))
            out.append(None)
    if garbage:
        store.metrics.record("error")
        shown = "; ".join(f"{job_id!r}: {why}" for job_id, why in garbage[:5])
        more = f" (and {len(garbage) - 5} more)" if len(garbage) > 5 else ""
        raise SerializationError(
            f"get_jobs: {len(garbage)} stored entries of queue {store.queue!r} are corrupt: {shown}{more}"
        )
    return out


async def origin_of(store: StreamsStore, keys: StreamKeys, job_id: str) -> str | None:
    """The queue a job stored under ``keys`` (another queue's, e.g. a ``move`` target) was
    moved from: its ``origin_queue``, or None when it is not stored there or came some other
    way (an entry that does not decode counts as not moved from anywhere).

    Raises:
        BackendError: the store failed.
    """
    reply = (await store.scripts("move", [ScriptCall("lookup", keys.core(), [store.group, job_id])]))[0]
    try:
        job = _located(store, job_id, reply[0])
    except DECODE_ERRORS:
        return None
    return None if job is None else job.origin_queue


async def stored(store: StreamsStore, keys: StreamKeys, job_id: str) -> bool:
    """Whether a job of this id is stored under ``keys`` (another queue's, e.g. a redrive target),
    in any state.

    Raises:
        BackendError: the store failed.
    """
    reply = (await store.scripts("redrive", [ScriptCall("lookup", keys.core(), [store.group, job_id])]))[0]
    return bool(reply[0])


async def refuse_if_sealed(store: StreamsStore, keys: StreamKeys, op: str) -> None:
    """Before a cross-slot move or redrive takes a job out: refuse when a migration sealed the
    target queue (its migration record names a new home), so the job stays where it is.

    Raises:
        QueueMovedError: the target queue moved (``home`` names where).
        BackendError: the store failed.
    """
    home = await store.call(op, "HGET", keys.record, "home")
    if home:
        raise QueueMovedError(store.name, op, text(home))


def _located(store: StreamsStore, job_id: str, reply: Sequence[Any]) -> Job | None:
    """One reply of ``lookup.lua`` as a Job (None: not stored).

    Raises:
        SerializationError, ValueError, KeyError, TypeError: the stored entry is garbage.
    """
    if not reply:
        return None
    kind, rest = text(reply[0]), reply[1:]
    if kind == "ready":
        return _stored(store, job_id, rest[0], JobState.READY)
    if kind == "dead":
        return _stored(store, job_id, rest[0], JobState.DEAD)
    if kind == "in_flight":
        fields, group, consumer, eid, deliveries, idle, deadline = rest
        d = int(deliveries)
        job = _stored(store, job_id, fields, JobState.IN_FLIGHT, d)
        job.lease_token = LeaseToken(text(group), text(consumer), text(eid), d).encode()
        job.lease_deadline = int(deadline) / 1000.0 if deadline is not None else None
        job.started_at = time.time() - int(idle) / 1000.0
        return job
    if kind == "delayed":
        body, meta, due = rest
        job = _stored(store, job_id, parked_fields(job_id, body or b"", meta), JobState.DELAYED)
        job.available_at = float(due) / 1000.0 if due is not None else None
        return job
    if kind in ("held", "moving"):
        body, meta = rest
        if body is None or meta is None:
            raise SerializationError(f"{kind} job without its parked body and meta")
        fields = parked_fields(job_id, body, meta)
        state = _STATES.get(text(fields.get("s", "ready")))
        if state is None:
            raise SerializationError(f"{kind} job with an unknown state {fields['s']!r}")
        job = _stored(store, job_id, fields, state)
        if state is JobState.DELAYED and "due" in fields:
            job.available_at = int(float(fields["due"])) / 1000.0
        return job
    raise SerializationError(f"unknown index value {text(rest[0] if rest else kind)!r}")


def _stored(store: StreamsStore, job_id: str, fields: Any, state: JobState, deliveries: int = 0) -> Job:
    job = entry_job(store.codec, store.queue, fields_map(fields), state, deliveries)
    if job.id != job_id:
        raise SerializationError(f"the entry indexed under {job_id!r} holds job {job.id!r}")
    return job

"""The dequeue side of ``redis-streams``: one ``take`` script call leases entries to a consumer.

The script first reclaims expired leases of any consumer of the group (XAUTOCLAIM, up to
``claim_count``), then reads new entries (XREADGROUP), records a lease deadline per entry
and returns the entries with their delivery counts. An entry that does not decode is
dead-letter'ed here (``bury``) with a placeholder job keeping its raw bytes. With nothing to
take, the caller waits outside Lua (a finite XREAD BLOCK) for an entry newer than the last.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from queuestore._job import Job, JobState
from queuestore._logging import get_logger, log_buried
from queuestore._models import DequeueOptions
from queuestore.backends._redis.errors import translating
from queuestore.backends.redis_streams.layout import SEP, LeaseToken, entry_job, fields_map
from queuestore.backends.redis_streams.settle import settle_args
from queuestore.backends.redis_streams.store import StreamsStore
from queuestore.errors import SerializationError

__all__ = ["SharedTake", "Take", "dequeue", "share", "take", "wait_for_entries"]

_log = get_logger("backends.redis_streams")


class Take(NamedTuple):
    """What one ``take`` script call gave."""

    #: the leased jobs
    jobs: list[Job]
    #: whether it returned any entries (all of them may have been garbage, now dead letters)
    took: bool
    #: the earliest due time of a delayed job (ms), if any
    next_due: Any
    #: the id of the newest entry it saw (where a wait for new entries starts)
    last_id: Any


#: a take shared with concurrent dequeues (coalescing): ``(group, consumer, lease) -> Take``
SharedTake = Callable[[str, str, float], Awaitable[Take]]


async def dequeue(
    store: StreamsStore, opts: DequeueOptions, count: int, shared: SharedTake | None
) -> list[Job]:
    """Lease up to ``count`` jobs as ``opts`` say, waiting up to its timeout for the first.

    Args:
        store: the queue.
        opts: group, consumer, lease length and timeout (defaults: the backend's).
        count: the most jobs to lease.
        shared: takes through this instead of one's own script call (coalesced ``dequeue``).

    Raises:
        InvalidJobError: an option is out of range.
        BackendError: the store failed.
    """
    timeout = opts.timeout_seconds()
    lease = opts.lease_seconds(store.claim_min_idle)
    group = opts.consumer_group or store.group
    consumer = opts.consumer_id or store.consumer
    await store.ensure_group(group)
    deadline = time.monotonic() + timeout
    while True:
        if shared is not None:
            got = await shared(group, consumer, lease)
        else:
            got = await take(store, group, consumer, count, lease)
        if got.jobs:
            store.metrics.record("dequeue", len(got.jobs))
            return got.jobs
        if got.took:
            continue  # all were garbage (now dead letters): try again at once
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return []
        wait = min(remaining, float(store.options.block_timeout))
        if got.next_due:
            wait = min(wait, max(0.001, float(got.next_due) / 1000.0 - time.time()))
        await wait_for_entries(store, got.last_id, wait)


async def take(store: StreamsStore, group: str, consumer: str, count: int, lease: float) -> Take:
    """Lease up to ``count`` entries to ``consumer`` of ``group`` for ``lease`` seconds.

    Raises:
        BackendError: the store failed.
    """
    args = store.take_args("dequeue", group, consumer, count, lease)
    entries, next_due, last_id = await store.run_in_group("dequeue", "take", store.keys.core(), args, group)
    jobs = await _materialize(store, entries, group, consumer, lease)
    return Take(jobs, bool(entries), next_due, last_id)


def share(result: Take, callers: int) -> list[Take]:
    """One take's result split between ``callers`` single-job dequeues: a job each while there
    are jobs, none for the others (which then wait like a dequeue that found nothing)."""
    jobs = result.jobs
    return [result._replace(jobs=jobs[i : i + 1]) for i in range(callers)]


async def _materialize(
    store: StreamsStore, entries: Any, group: str, consumer: str, lease: float
) -> list[Job]:
    now = time.time()
    deadline = now + lease
    head = f"{group}{SEP}{consumer}{SEP}"  # LeaseToken(group, consumer, eid, n).encode()
    codec, queue, in_flight = store.codec, store.queue, JobState.IN_FLIGHT
    jobs: list[Job] = []
    for eid_raw, deliveries_raw, raw in entries:
        eid, deliveries = eid_raw.decode(), int(deliveries_raw)
        if type(raw) is list and all(type(v) is bytes for v in raw):  # a script reply: flat bytes
            fields = dict(zip([k.decode() for k in raw[::2]], raw[1::2], strict=True))
        else:
            fields = fields_map(raw)
        try:
            job = entry_job(codec, queue, fields, in_flight, deliveries)
        except (SerializationError, ValueError, KeyError) as exc:
            token = LeaseToken(group, consumer, eid, deliveries)
            await _bury(store, fields, token, f"undecodable entry {eid}: {exc}")
            continue
        job.lease_token = f"{head}{eid}{SEP}{deliveries}"
        job.lease_deadline, job.started_at = deadline, now
        jobs.append(job)
    return jobs


async def _bury(store: StreamsStore, fields: dict[str, bytes], token: LeaseToken, reason: str) -> None:
    """Dead-letter an entry that does not decode, with a placeholder job keeping its raw bytes."""
    jid = fields.get("j", b"").decode(errors="replace") or f"garbage-{token.entry_id}"
    raw = {k: v[:200].decode(errors="replace") for k, v in fields.items()}
    body = store.codec.encode(Job(id=jid, queue=store.queue, metadata=raw, dead_reason=reason))
    args = [*settle_args(store, "bury", jid, token.args()), body, reason]
    await store.script("dequeue", "settle", store.keys.core(), args)
    store.metrics.record("dead")
    log_buried(_log, store.queue, store.name, jid, reason)


async def wait_for_entries(store: StreamsStore, last_id: Any, wait: float) -> None:
    """Block (outside Lua, finite) until an entry newer than ``last_id`` exists or ``wait``
    seconds passed.

    Raises:
        BackendClosedError: the backend is closed.
        BackendError: the store failed.
    """
    store.check_open("dequeue")
    with translating(store.name, "dequeue"):
        await store.conn.blocking_client.execute_command(
            "XREAD", "BLOCK", max(1, int(wait * 1000)), "STREAMS", store.keys.stream, last_id
        )

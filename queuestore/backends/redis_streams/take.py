"""The dequeue side of ``redis-streams``: a take leases entries to a consumer.

A take of two or more jobs on a standalone server is one transaction around a plain XREADGROUP
(see :mod:`.transaction`). Any other take is one ``take`` script call: it first reclaims
expired leases of any consumer of the group (XAUTOCLAIM, up to ``claim_count``), then reads
new entries (XREADGROUP), records a lease deadline per entry and returns the entries with
their delivery counts. An entry that does not decode is
dead-letter'ed here (``bury``) with a placeholder job keeping its raw bytes. With nothing to
take, the caller waits outside Lua (a finite XREAD BLOCK) for an entry newer than the last.

Each take carries a call id: a transparent retry of a take whose reply was lost returns the
entries the first run leased (no more), and a dequeue cancelled while its take may have run
hands back what that take leased (shielded from the cancellation), without counting an attempt.
Lease deadlines are the server's (``TIME``), as stored.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

import anyio

from queuestore._args import text
from queuestore._job import Job, JobState
from queuestore._logging import get_logger, log_buried
from queuestore._models import DequeueOptions
from queuestore.backends._redis.blocking import wait_stream
from queuestore.backends._redis.errors import translating
from queuestore.backends._redis.scripts import MAX_JOBS_PER_SCRIPT
from queuestore.backends.redis_streams.layout import (
    MAX_LEASE_SECONDS,
    SEP,
    LeaseToken,
    call_id,
    enqueued_entry_job,
    entry_job,
    fields_map,
)
from queuestore.backends.redis_streams.settle import give_back, settle_args
from queuestore.backends.redis_streams.store import StreamsStore, log
from queuestore.backends.redis_streams.transaction import read_in_transaction, sift, usable
from queuestore.errors import InvalidJobError, OutcomeUnknownError, QueueStoreError, SerializationError

__all__ = [
    "Share",
    "SharedTake",
    "Take",
    "dequeue",
    "give_back_share",
    "hand_back",
    "share",
    "take",
    "take_up_to",
    "wait_for_entries",
]

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
    #: the server's clock when it ran (ms)
    server_now: int = 0


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
        InvalidJobError: an option is out of range, or ``consumer_group`` names a group the
            stream does not have (see :meth:`~.store.StreamsStore.check_group`).
        OutcomeUnknownError: a take's reply was lost even to its retries.
        BackendError: the store failed.
    """
    timeout = opts.timeout_seconds()
    lease = opts.lease_seconds(store.claim_min_idle)
    if lease > MAX_LEASE_SECONDS:
        raise InvalidJobError("visibility_timeout", f"must be at most {MAX_LEASE_SECONDS:.0f} seconds")
    group = opts.consumer_group or store.group
    consumer = opts.consumer_id or store.consumer
    await store.check_group(group)
    deadline = time.monotonic() + timeout
    while True:
        if shared is not None:
            got = await shared(group, consumer, lease)
        else:
            got = await take_up_to(store, group, consumer, count, lease)
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
            wait = min(wait, max(0.001, (float(got.next_due) - got.server_now) / 1000.0))
        await wait_for_entries(store, got.last_id, wait)


async def take(
    store: StreamsStore,
    group: str,
    consumer: str,
    count: int,
    lease: float,
    cid: str = "",
    *,
    retry: bool = False,
) -> Take:
    """Lease up to ``count`` entries to ``consumer`` of ``group`` for ``lease`` seconds: as one
    transaction where it can be (see :mod:`.transaction`), else by the ``take`` script. ``cid``
    is the call's id (a new one by default); ``retry``: the call ``cid`` again, whose reply was
    lost (by the script, which returns what the first run leased and leases no more).

    Cancelled while the take may have run (or while its entries are decoded), or left
    without the reply even after the retries, it hands back what the take leased before
    re-raising: no caller saw those jobs.

    Raises:
        OutcomeUnknownError: the reply was lost even to the retries (the leases, if any, were
            handed back; if the hand-back failed too, they expire).
        BackendError: the store failed.
    """
    cid = cid or call_id()
    try:
        read = None
        if not retry and usable(store, count, lease):
            read = await read_in_transaction(store, group, consumer, count, lease, cid)
        if read is not None:
            entries, deadline_ms, server_now, holder = read
            took, next_due, last_id = bool(entries), False, False
            entries = await sift(store, group, holder, entries, lease, server_now)
        else:
            args = store.take_args("dequeue", group, consumer, count, lease, cid)
            reply = await store.run_in_group("dequeue", "take", store.keys.core(), args, group)
            entries, next_due, last_id, deadline_ms, server_now = reply[:5]
            holder = text(reply[5]) if len(reply) > 5 and reply[5] else consumer
            took = bool(entries)
        jobs = await _materialize(store, entries, group, holder, int(deadline_ms), int(server_now))
    except (anyio.get_cancelled_exc_class(), OutcomeUnknownError):
        await hand_back(store, cid, group)
        raise
    store.calls.received(cid if took else "")  # its record: no hand-back reads it any more
    return Take(jobs, took, next_due, last_id, int(server_now))


async def take_up_to(store: StreamsStore, group: str, consumer: str, count: int, lease: float) -> Take:
    """:func:`take` of up to ``count`` entries, a take per :data:`MAX_JOBS_PER_SCRIPT` while
    each took all it asked for. Cancelled during a later take, or when one fails, the call hands
    back the jobs the earlier takes leased (a take cut by a lost reply hands back its own), then
    re-raises.

    Raises:
        OutcomeUnknownError: a take's reply was lost even to the retries.
        BackendError: the store failed.
    """
    want = min(count, MAX_JOBS_PER_SCRIPT)
    got = await take(store, group, consumer, want, lease)
    jobs, last = got.jobs, got
    while len(jobs) < count and len(last.jobs) == want:
        want = min(count - len(jobs), MAX_JOBS_PER_SCRIPT)
        try:
            last = await take(store, group, consumer, want, lease)
        except (anyio.get_cancelled_exc_class(), QueueStoreError):
            await hand_back(store, "", group, jobs)
            raise
        jobs = jobs + last.jobs
    return got._replace(jobs=jobs)


async def hand_back(store: StreamsStore, cid: str, group: str, jobs: Sequence[Job] = ()) -> None:
    """Hand back what the take ``cid`` leased (or, ``cid`` empty, ``jobs``) that no caller got
    (its dequeue was cancelled or lost the reply), shielded from the caller's cancellation but
    given half the ``call_margin`` at most (a stalled server must not hold a cancelled call); a
    failure or no answer is logged (the leases then expire, the attempt counted)."""
    limit = float(store.options.call_margin) / 2.0
    try:
        with anyio.move_on_after(limit, shield=True) as scope:
            await give_back(store, cid, group, [j.lease_token for j in jobs if j.lease_token])
    except QueueStoreError as exc:
        log.warning(
            "redis-streams %s: a dequeue that returned no jobs could not hand them back: %s", store.name, exc
        )
        return
    if scope.cancelled_caught:
        log.warning(
            "redis-streams %s: a dequeue that returned no jobs got no answer handing them back within %gs "
            "(half the call_margin): their leases expire and they are redelivered",
            store.name,
            limit,
        )


def share(result: Take, callers: int) -> list[Take]:
    """One take's result split between ``callers`` single-job dequeues: a job each while there
    are jobs, none for the others (which then wait like a dequeue that found nothing)."""
    jobs = result.jobs
    return [result._replace(jobs=jobs[i : i + 1]) for i in range(callers)]


class Share:
    """One coalesced ``dequeue`` call's place in a shared take: the flush fills ``take``; the
    caller sets ``cancelled`` when it is cancelled before it got it."""

    __slots__ = ("cancelled", "key", "take")

    def __init__(self, key: tuple[Any, ...]) -> None:
        self.key = key
        self.take: Take | None = None
        self.cancelled = False


async def give_back_share(store: StreamsStore, group: str, shares: Sequence[Share]) -> None:
    """Hand back the jobs a shared take gave to callers that were cancelled meanwhile
    (shielded: the flush or the caller may itself be cancelled)."""
    lost = [j for s in shares if s.cancelled and s.take is not None for j in s.take.jobs]
    for s in shares:
        if s.cancelled and s.take is not None:
            s.take = s.take._replace(jobs=[])
    if lost:
        await hand_back(store, "", group, lost)


class _Names(dict[bytes, str]):
    """Entry field names, each decoded once per process (a few dozen kept at most: garbage
    entries may carry any names)."""

    def __missing__(self, key: bytes) -> str:
        name = key.decode()
        if len(self) < 64:
            self[key] = name
        return name


_NAMES = _Names()


async def _materialize(
    store: StreamsStore, entries: Any, group: str, consumer: str, deadline_ms: int, now_ms: int
) -> list[Job]:
    now, deadline = now_ms / 1000.0, deadline_ms / 1000.0
    head = f"{group}{SEP}{consumer}{SEP}"  # LeaseToken(group, consumer, eid, n).encode()
    first = SEP + "1"  # a token's tail on a first delivery
    codec, queue, in_flight, name = store.codec, store.queue, JobState.IN_FLIGHT, _NAMES.__getitem__
    jobs: list[Job] = []
    append = jobs.append
    for eid_raw, deliveries_raw, raw in entries:
        eid = eid_raw.decode()
        deliveries = 1 if deliveries_raw == 1 else int(deliveries_raw)
        job = enqueued_entry_job(codec, raw, deliveries)
        if job is not None:
            job.queue = queue
            job.lease_token = head + eid + first if deliveries == 1 else f"{head}{eid}{SEP}{deliveries}"
            job.lease_deadline = deadline
            job.started_at = now
            append(job)
            continue
        try:  # a script reply: flat bytes
            fields = dict(zip(map(name, raw[::2]), raw[1::2], strict=True))
        except (AttributeError, TypeError, ValueError):
            fields = fields_map(raw)
        try:
            job = entry_job(codec, queue, fields, in_flight, deliveries)
        except (SerializationError, ValueError, KeyError) as exc:
            token = LeaseToken(group, consumer, eid, deliveries)
            await _bury(store, fields, token, f"undecodable entry {eid}: {exc}")
            continue
        job.lease_token = f"{head}{eid}{SEP}{deliveries}"
        job.lease_deadline, job.started_at = deadline, now
        append(job)
    return jobs


async def _bury(store: StreamsStore, fields: dict[str, bytes], token: LeaseToken, reason: str) -> None:
    """Dead-letter an entry that does not decode, with a placeholder job keeping its raw bytes."""
    jid = fields.get("j", b"").decode(errors="replace") or f"garbage-{token.entry_id}"
    raw = {k: v[:200].decode(errors="replace") for k, v in fields.items()}
    body = store.codec.encode(Job(id=jid, queue=store.queue, metadata=raw, dead_reason=reason))
    stored_id = fields.get("j") or jid  # as stored: the script matches it with the entry's own
    args = [*settle_args(store, "bury", stored_id, token.args()), body, reason]
    await store.mutate("dequeue", "settle", store.keys.core(), args)
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
        await wait_stream(store.conn, store.keys.stream, last_id, wait)

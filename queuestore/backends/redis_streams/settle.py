"""The settle side of ``redis-streams``: what a lease holder (or an operator, by bare id) does
with a job -- ack (one call of the ``ack`` script for any number of jobs), nack, extend_lease,
move (each one call of the ``settle`` script; a cross-slot move: park, enqueue in the target,
forget, each step idempotent).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from redis.crc import key_slot

from queuestore._args import JobRef, job_ref, seconds_arg
from queuestore._backoff import backoff_policy
from queuestore._job import Job, JobState
from queuestore._logging import get_logger, log_dead_lettered
from queuestore.backends._redis.keys import validate_queue_name
from queuestore.backends.redis_streams import lookup
from queuestore.backends.redis_streams.layout import (
    MAX_LEASE_SECONDS,
    SEP,
    LeaseToken,
    entry_job,
    fields_map,
    job_args,
    ms,
)
from queuestore.backends.redis_streams.store import StreamsStore
from queuestore.errors import ConfigurationError, InvalidJobError, JobNotFoundError, LeaseLostError

__all__ = [
    "AckRef",
    "ack_args",
    "ack_ref",
    "acks",
    "acks_of",
    "extend_lease",
    "give_back",
    "move",
    "nack",
    "settle_args",
    "settle_error",
    "take_ack_args",
]

_log = get_logger("backends.redis_streams")


#: the ``ack`` script's status characters (as bytes values): ok, not in flight, lease lost
_ACK_STATUS = {ord("1"): 1, ord("0"): 0, ord("L"): -1}


def settle_error(status: int, job_id: str) -> LeaseLostError | JobNotFoundError | None:
    """The error a settle status stands for (1 ok: None, -1 lease lost, else not in flight)."""
    if status == 1:
        return None
    if status == -1:
        return LeaseLostError(job_id)
    return JobNotFoundError.not_in_flight(job_id)


def _check(status: int, job_id: str) -> None:
    error = settle_error(status, job_id)
    if error is not None:
        raise error


def _guard(store: StreamsStore, job: JobRef) -> tuple[str, list[str]]:
    """``(job id, the four lease arguments)``; a bare id acts on its current lease."""
    job_id, token = job_ref(job)
    if token is None:
        return job_id, [store.group, "", "", ""]
    return job_id, LeaseToken.decode(token).args()


def settle_args(
    store: StreamsStore, op: str, job_id: str | bytes, guard: list[str], target: str = ""
) -> list[Any]:
    """The arguments of a one-job ``settle`` op (before the op's own), with a fresh call id
    (``job_id`` as bytes: an id as stored that is not UTF-8, for a ``bury``)."""
    return [op, store.call_id(), int(store.retain), store.queue, target, job_id, *guard]


#: One job of the ``ack`` script: ``(job id, group, consumer, entry id,
#: deliveries)``, the token's fields ("" for a bare id's).
AckRef = tuple[str, str, str, str, str]


def ack_ref(group: str, job: JobRef) -> AckRef:
    """The :data:`AckRef` of ``job`` (a bare id: ``group`` and empty token fields).

    The same checks as ``LeaseToken.decode(token)`` without building a token object (packing
    is most of the client's cost of a big ack).

    Raises:
        InvalidJobError: ``job`` is neither a Job nor a job id, or its token is not a
            redis-streams lease token.
    """
    if type(job) is Job:  # the common case, checked as job_ref does, without its calls
        job_id, token = job.id, job.lease_token
        if type(job_id) is str and type(token) is str and job_id.isascii() and job_id and token.isascii():
            parts = token.split(SEP)
            if len(parts) == 4 and parts[3] == "1":
                return job_id, parts[0], parts[1], parts[2], "1"
    job_id, token = job_ref(job)
    if token is None:
        return job_id, group, "", "", ""
    parts = token.split(SEP)
    if len(parts) != 4 or not (parts[3].isascii() and parts[3].isdigit()):
        raise InvalidJobError("lease_token", "not a redis-streams lease token")
    deliveries = parts[3]
    if deliveries != "1":
        deliveries = str(int(deliveries))
    return job_id, parts[0], parts[1], parts[2], deliveries


def ack_args(refs: Iterable[AckRef]) -> list[str]:
    """The per-job arguments of the ``ack`` script: runs of jobs whose tokens share
    group, consumer and deliveries (a take's jobs are one run), each ``group, consumer,
    deliveries, k`` followed by its ``k`` entry ids, then its ``k`` job ids in the same order."""
    args: list[str] = []
    eids: list[str] = []
    jids: list[str] = []
    group = consumer = deliveries = ""
    for job_id, g, c, eid, d in refs:
        if g != group or c != consumer or d != deliveries:
            if eids:
                args += (group, consumer, deliveries, str(len(eids)), *eids, *jids)
                eids, jids = [], []
            group, consumer, deliveries = g, c, d
        eids.append(eid)
        jids.append(job_id)
    if eids:
        args += (group, consumer, deliveries, str(len(eids)), *eids, *jids)
    return args


#: a first delivery's lease token ends so (``LeaseToken(..., deliveries=1).encode()``)
_FIRST = SEP + "1"


def take_ack_args(jobs: Sequence[JobRef]) -> list[str] | None:
    """The :func:`ack_args` of ``jobs`` when they are one run of first deliveries (what a
    ``dequeue_many`` returned: every one a :class:`Job` whose token names the first's group and
    consumer and delivery 1, all ASCII), read off the tokens without splitting each; None for
    anything else (:func:`ack_ref` then reads each job).
    """
    first = jobs[0]
    token = first.lease_token if type(first) is Job else None
    if type(token) is not str or not token.isascii():
        return None
    parts = token.split(SEP)
    if len(parts) != 4 or parts[3] != "1":
        return None
    head = f"{parts[0]}{SEP}{parts[1]}{SEP}"
    start, least = len(head), len(head) + len(_FIRST)
    eids: list[str] = []
    jids: list[str] = []
    for job in jobs:
        if type(job) is not Job:
            return None
        t, jid = job.lease_token, job.id
        if not (type(t) is str and type(jid) is str and jid and len(t) >= least):
            return None
        if not (t.startswith(head) and t.endswith(_FIRST)):
            return None
        eid = t[start:-2]
        if SEP in eid:
            return None
        eids.append(eid)
        jids.append(jid)
    if not ("".join(eids).isascii() and "".join(jids).isascii()):
        return None
    return [parts[0], parts[1], "1", str(len(eids)), *eids, *jids]


async def acks(store: StreamsStore, refs: Sequence[AckRef]) -> list[int]:
    """Ack jobs given as :data:`~.layout.AckRef` in one script call (XACK + XDEL and bookkeeping
    per job; the statuses come back as one string, a character per job).

    Returns:
        A settle status per job (see :func:`settle_error`).

    Raises:
        OutcomeUnknownError: no reply came back, even to the retries with the same call id.
        BackendError: the store failed.
    """
    return await acks_of(store, ack_args(refs))


async def acks_of(store: StreamsStore, runs: list[str]) -> list[int]:
    """Ack the jobs of ``runs`` (:func:`ack_args`) in one script call, as :func:`acks` does.

    Raises:
        OutcomeUnknownError: no reply came back, even to the retries with the same call id.
        BackendError: the store failed.
    """
    args: list[Any] = [store.call_id(), int(store.retain), store.queue, *runs]
    reply = await store.mutate("ack", "ack", store.keys.core(), args)
    chars: bytes = reply[0]
    all_acked = chars.count(b"1") == len(chars)  # the common case: no lookup per job
    statuses = [1] * len(chars) if all_acked else [_ACK_STATUS[c] for c in chars]
    store.metrics.record("ack", statuses.count(1))
    return statuses


async def nack(
    store: StreamsStore, job: JobRef, requeue: bool, delay: float | timedelta | None, error: str | None
) -> None:
    """Retry (new entry, or delayed) or dead-letter, and release the old entry, in one script.

    Without ``delay`` the ``retry_backoff`` option's policy sets it: the script computes it from
    the job's stored retry count (no backoff: ready at once).

    Raises:
        JobNotFoundError, LeaseLostError, InvalidJobError, OutcomeUnknownError, BackendError.
    """
    backoff: list[float] = []
    if delay is None:
        policy = backoff_policy(store.options.retry_backoff)
        delay_ms = 0 if policy is None else -1
        backoff = [] if policy is None else policy.script_args()
    else:
        delay_ms = ms(_bounded(seconds_arg(delay, "delay"), "delay"))
    job_id, guard = _guard(store, job)
    args = [*settle_args(store, "nack", job_id, guard), int(requeue), delay_ms, error or "", *backoff]
    res = await store.mutate("nack", "settle", store.keys.core(), args)
    _check(int(res[0]), job_id)
    store.metrics.record("nack")
    if res[1] == b"dead":
        store.metrics.record("dead")
        log_dead_lettered(_log, store.queue, store.name, job_id)


async def extend_lease(store: StreamsStore, job: JobRef, seconds: float | timedelta) -> float:
    """Move the lease record's deadline to ``seconds`` from now on the server's clock (the entry
    stays pending).

    Returns:
        The new deadline (epoch seconds): the one the server stored.

    Raises:
        JobNotFoundError, LeaseLostError, InvalidJobError, OutcomeUnknownError, BackendError.
    """
    secs = _bounded(seconds_arg(seconds, "seconds", allow_zero=False), "seconds")
    job_id, guard = _guard(store, job)
    args = [*settle_args(store, "extend", job_id, guard), ms(secs)]
    res = await store.mutate("extend_lease", "settle", store.keys.core(), args)
    _check(int(res[0]), job_id)
    return int(res[1]) / 1000.0


async def give_back(store: StreamsStore, take_call: str, group: str, leases: Sequence[str] = ()) -> int:
    """Hand back what the dequeue call ``take_call`` leased, or (``take_call`` empty) the
    ``leases`` given as lease tokens: nobody holds these jobs (their dequeue was cancelled), so
    each goes back to the tail of the stream without counting an attempt. If the take
    ``take_call`` has not run yet, it will lease nothing when it does.

    Returns:
        How many jobs were handed back.

    Raises:
        OutcomeUnknownError, BackendError.
    """
    args: list[Any] = ["giveback", "", int(store.retain), store.queue, "", take_call, group]
    for token in leases:
        lease = LeaseToken.decode(token)
        args += [lease.entry_id, lease.deliveries]
    res = await store.mutate("dequeue", "settle", store.keys.core(), args)
    return int(res[0])


def _bounded(secs: float, field: str) -> float:
    if secs > MAX_LEASE_SECONDS:
        raise InvalidJobError(field, f"must be at most {MAX_LEASE_SECONDS:.0f} seconds")
    return secs


async def move(store: StreamsStore, job: JobRef, target_queue: str) -> None:
    """Move a job (leased, ready, delayed or dead) to another queue, arriving ready.

    Same slot: one script. Across cluster slots: park it under ``M`` in the
    source, enqueue it in the target (idempotent by id), then forget the
    parked copy -- re-running ``move`` after a crash finishes the job.

    Raises:
        JobNotFoundError, LeaseLostError, InvalidJobError, OutcomeUnknownError, BackendError.
    """
    try:
        validate_queue_name(target_queue, "target_queue")
    except ConfigurationError as exc:
        raise InvalidJobError("target_queue", exc.message) from None
    job_id, guard = _guard(store, job)
    if target_queue == store.queue:
        raise InvalidJobError("target_queue", "is the job's own queue")
    sk, tk = store.keys, store.target_keys(target_queue)
    if not store.conn.cluster or key_slot(tk.stream.encode()) == key_slot(sk.stream.encode()):
        keys = [*sk.core(), tk.stream, tk.idx, tk.ttl, tk.counters, tk.meta, tk.dead]
        keys += [tk.delayed, tk.parked, tk.leases, tk.record]
        res = await store.mutate(
            "move", "settle", keys, settle_args(store, "move", job_id, guard, target_queue)
        )
        _check(int(res[0]), job_id)
        return
    await lookup.refuse_if_sealed(store, tk, "move")
    res = await store.mutate("move", "settle", sk.core(), settle_args(store, "moveout", job_id, guard))
    unguarded = guard[1:] == ["", "", ""]
    if int(res[0]) == 0 and unguarded and await lookup.origin_of(store, tk, job_id) == store.queue:
        return  # a retried move that had finished (the target's copy came from here)
    _check(int(res[0]), job_id)
    moved = entry_job(store.codec, target_queue, fields_map(res[1]), JobState.READY)
    moved.origin_queue, moved.dead_reason, moved.dead_at = store.queue, None, None
    await store.enqueue_rows(
        "move", [job_args(store.codec, target_queue, moved, idem=False)], tk, window_ms=0
    )
    await store.mutate("move", "settle", sk.core(), settle_args(store, "moved", job_id, guard))

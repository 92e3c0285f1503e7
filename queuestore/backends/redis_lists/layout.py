"""How a redis-lists queue is laid out in Redis: key names, stored records, reading them back.

All keys of queue ``Q`` share the hash tag ``{Q}``, so every script gets all its keys in
KEYS and runs on a cluster. Ready jobs wait in Redis LISTs, one per priority (pushed at
the left, popped at the right); the job record in the ``meta`` hash is the truth, so an
entry a job left by id (move, TTL) is skipped and dropped when it is popped. The full
table, with each operation's cost, is in ``docs/backends/redis-lists.md``.

A job record (one ``meta`` field) and a plain producer's entry are read and written by
:mod:`~queuestore.backends.redis_lists.job_record`.

The key block every script gets as ``KEYS[1..BLOCK_LEN]`` is :data:`KEY_SUFFIXES` in
order; the Lua side reads it from :data:`LUA_PREAMBLE`, generated from the same tuple.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from queuestore._args import JobRef, job_ref, text
from queuestore._codec import JobCodec
from queuestore._job import PRIORITY_MAX, PRIORITY_MIN, Job, JobState
from queuestore.backends._redis.keys import QueueKeys
from queuestore.backends.redis_lists.job_record import (
    META_DEC,
    PLAIN_MARKER,
    Meta,
    Record,
    decode_plain,
    parse_record,
)
from queuestore.errors import DuplicateJobError, JobNotFoundError, LeaseLostError, SerializationError

__all__ = [
    "BAD_ID",
    "CORRUPT_PREFIX",
    "KEY_SUFFIXES",
    "LAYOUT_NAME",
    "LONE_STORE_KEYS",
    "LUA_PREAMBLE",
    "MIGRATABLE",
    "READY_LISTS",
    "SET_OF",
    "STATE_CODE",
    "WAKE",
    "ListsLayout",
    "ack_ref",
    "check_code",
    "key_block",
    "status_codes",
]

#: the value of the ``layout`` field of the ``info`` hash this code reads and writes
LAYOUT_NAME = "redis-lists/2"
#: one ready list per priority, ``ready:0`` .. ``ready:9`` (higher priority popped first)
READY_LISTS = tuple(f"ready:{p}" for p in range(PRIORITY_MIN, PRIORITY_MAX + 1))
#: the key block every lists script gets as KEYS[1..], in this order
KEY_SUFFIXES = (
    *("jobs", "meta", "ready", "delayed", "inflight", "dead", "ttl", "info", "wake", "idem"),
    *("calls", "calltimes", "gone", "migration"),
    *READY_LISTS,
)
WAKE = KEY_SUFFIXES.index("wake")
#: the keys ``enqueue_one.lua`` takes (then the ready list of the job's priority): what storing
#: one ready job touches when nothing is due
LONE_STORE_KEYS = ("jobs", "meta", "info", "wake", "calls", "calltimes", "migration")
#: the state code of a record per job state
STATE_CODE = {JobState.READY: "r", JobState.DELAYED: "d", JobState.IN_FLIGHT: "i", JobState.DEAD: "x"}
CODE_STATE = {v: k for k, v in STATE_CODE.items()}
#: the states a migration holds and imports (in-flight jobs stay with their lease)
MIGRATABLE = (JobState.READY, JobState.DELAYED, JobState.DEAD)
#: index in the key block of the sorted set of each state kept in one (ready jobs are in lists)
SET_OF = {
    JobState.DELAYED: KEY_SUFFIXES.index("delayed"),
    JobState.IN_FLIGHT: KEY_SUFFIXES.index("inflight"),
    JobState.DEAD: KEY_SUFFIXES.index("dead"),
}
GARBAGE_META = "corrupt or missing job metadata"
MISSING_BODY = "job body is missing"
BAD_ID = "job id is not UTF-8"
#: ``Job.last_error`` of a job read from garbage (see :meth:`ListsLayout.read_job`)
CORRUPT_PREFIX = "corrupt: "


def lua_key_constants() -> str:
    """Lua declaring the key-block indexes (``JOBS = 1`` ...; ``READY0`` is the index of
    ``ready:0``, so the list of priority ``p`` is ``K[READY0 + p]``), the block length
    ``BLOCK_LEN``, the index ``EXTRA`` of the key after it, ``STATE_SET`` (state code ->
    index of its sorted set), the priority range and the layout name, generated from
    :data:`KEY_SUFFIXES`, :data:`STATE_CODE` and :data:`LAYOUT_NAME`."""
    plain = [s for s in KEY_SUFFIXES if ":" not in s]
    names = [s.upper() for s in plain]
    indexes = [str(KEY_SUFFIXES.index(s) + 1) for s in plain]
    sets = ", ".join(f"{STATE_CODE[state]} = {idx + 1}" for state, idx in SET_OF.items())
    return (
        "-- generated from queuestore.backends.redis_lists.layout: the key block is KEYS[1..BLOCK_LEN];\n"
        "-- EXTRA is the one key some scripts get after it (moving, inbox or holding set)\n"
        f"local {', '.join(names)} = {', '.join(indexes)}\n"
        f"local READY0, PRIO_MIN, PRIO_MAX = {KEY_SUFFIXES.index(READY_LISTS[0]) + 1}, "
        f"{PRIORITY_MIN}, {PRIORITY_MAX}\n"
        f"local BLOCK_LEN, EXTRA = {len(KEY_SUFFIXES)}, {len(KEY_SUFFIXES) + 1}\n"
        "-- state code -> index of its sorted set in the key block (ready jobs are in lists)\n"
        f"local STATE_SET = {{{sets}}}\n"
        f'local LAYOUT_NAME = "{LAYOUT_NAME}"\n'
        "-- info hash fields per priority, written out (no number-to-string conversion); the\n"
        "-- tables are built only by the scripts that call these\n"
        f"local function ne_fields() return {{{prio_fields('ne')}}} end\n"
        f"local function pop_fields() return {{{prio_fields('pop')}}} end\n"
        "-- the numbers 1..NTH_MAX written out (a lease's token suffix)\n"
        f"local function nth_strings() return {{{nth_fields()}}} end\n"
    )


#: the token suffixes the lease script has written out (a larger batch converts the rest)
NTH_MAX = 100


def nth_fields() -> str:
    """The items of a Lua table constructor ``"1", "2", ...`` up to :data:`NTH_MAX`."""
    return ", ".join(f'"{n}"' for n in range(1, NTH_MAX + 1))


def prio_fields(stem: str) -> str:
    """A Lua table constructor ``[0] = "stem:0", ...`` over the priority range."""
    return ", ".join(f'[{p}] = "{stem}:{p}"' for p in range(PRIORITY_MIN, PRIORITY_MAX + 1))


#: what every lists script gets before ``lua/_lib.lua`` (the ``preamble`` of its ScriptSet)
LUA_PREAMBLE = lua_key_constants()


def key_block(keys: QueueKeys) -> list[str]:
    """The standard key block of a queue (``KEYS[1..BLOCK_LEN]`` of every lists script)."""
    return [keys.key(s) for s in KEY_SUFFIXES]


def ack_ref(job: JobRef) -> tuple[str, str]:
    """``(job id, guard)`` of the ack script for a dequeued ``Job`` or a bare id.

    The guard of a ``Job`` with a lease token is the header its record starts with while the
    lease is its holder's, ``i|<attempt>|<lease token>|`` (a new lease changes the token, an
    extension only the deadline after it), which the script compares in one step. When the
    header cannot be the record's (an attempt that is not a number, or a token with a ``|``:
    altered by their holder), the attempt is left out, and the script compares the token
    alone, as it does whenever the header does not match. A bare id (or a ``Job`` without a
    token) has the guard ``""``: the current lease, unguarded.

    Raises:
        InvalidJobError: as :func:`~queuestore._args.job_ref`.
    """
    job_id, token = job_ref(job)
    if not token:
        return job_id, ""
    attempt = job.attempt if isinstance(job, Job) else None
    shown = str(attempt) if type(attempt) is int and attempt >= 0 and "|" not in token else ""
    return job_id, f"i|{shown}|{token}|"


#: the status characters of a reply or call record of statuses (after its "#")
_STATUS_CODE = {ord("1"): 1, ord("0"): 0, ord("L"): -1, ord("N"): -2}


def status_codes(reply: bytes | str) -> list[int]:
    """The per-job codes of a reply of statuses: ``#`` and one character a job (``1`` done, ``0``
    unknown, ``L`` lease lost, ``N`` not in flight; see :func:`check_code`).

    Raises:
        SerializationError: the reply is not such a string.
    """
    raw = reply.encode() if isinstance(reply, str) else bytes(reply)
    try:
        if raw[:1] != b"#":
            raise KeyError(raw[:1])
        return [_STATUS_CODE[c] for c in raw[1:]]
    except KeyError:
        raise SerializationError(f"unreadable statuses {raw[:40]!r}") from None


def check_code(code: int, job_id: str) -> None:
    """Raise the error a script's result code stands for (1 is success).

    Raises:
        LeaseLostError: -1, the lease is not the current one.
        JobNotFoundError: 0 unknown, -2 not in flight, -4 being moved elsewhere.
        DuplicateJobError: -3, the move target stores another job with that id.
    """
    if code == 1:
        return
    if code == -1:
        raise LeaseLostError(job_id)
    if code == -2:
        raise JobNotFoundError(job_id, f"job {job_id!r} is not in flight")
    if code == -3:
        raise DuplicateJobError(job_id, f"job {job_id!r} is already stored in the target queue")
    if code == -4:
        raise JobNotFoundError(job_id, f"job {job_id!r} is being moved to another queue")
    raise JobNotFoundError.not_in_flight(job_id)


class ListsLayout:
    """The keys of one queue and the decoding of its stored records.

    Args:
        keys: the queue's key builder.
        codec: the job body codec of the backend.
    """

    __slots__ = ("block", "codec", "keys", "lone_blocks", "queue", "state_block")

    def __init__(self, keys: QueueKeys, codec: JobCodec) -> None:
        self.keys = keys
        self.queue = keys.queue
        self.codec = codec
        #: the key block, built once: it is passed on every script call (not to be mutated)
        self.block = key_block(keys)
        #: the key block without the ready lists: enough for the scripts that never touch them
        #: (ack, extend, lookup), which then pass half the keys
        self.state_block = self.block[: KEY_SUFFIXES.index(READY_LISTS[0])]
        lone = [self.block[KEY_SUFFIXES.index(s)] for s in LONE_STORE_KEYS]
        #: per priority: the keys of ``enqueue_one.lua`` (a lone ready job; see :data:`LONE_STORE_KEYS`)
        self.lone_blocks = {p: [*lone, self.ready_key(p)] for p in range(PRIORITY_MIN, PRIORITY_MAX + 1)}

    def ready_key(self, priority: int) -> str:
        """The ready list of one priority."""
        return self.block[KEY_SUFFIXES.index(READY_LISTS[priority - PRIORITY_MIN])]

    def read_job(self, job_id: str, body: bytes, raw_record: bytes) -> tuple[Job, str | None]:
        """A Job from its stored body and record; the second item names garbage (or is None).

        Garbage (record or body missing or undecodable) is never passed off as a job: its
        ``last_error`` is ``"corrupt: <reason>"`` (:data:`CORRUPT_PREFIX`), and an
        undecodable body comes back as the raw bytes in ``payload``.
        """
        if type(raw_record) is bytes and raw_record[:2] == b"i|" and type(body) is bytes:
            job = self._read_in_flight(job_id, body, raw_record)
            if job is not None:
                return job, None
        bad: str | None = None
        rec = parse_record(raw_record)
        if rec is None:
            rec, bad = (
                Record(st="x", a=0, t=None, sa=None, dl=None, meta=Meta(p=0, mr=0, rc=0, dr=GARBAGE_META)),
                GARBAGE_META,
            )
        meta = rec.meta
        if body:
            try:
                if bytes(body[: len(PLAIN_MARKER)]) == PLAIN_MARKER:
                    job = decode_plain(job_id, bytes(body))
                else:
                    job = self.codec.decode(body)
            except SerializationError as exc:
                job, bad = Job(id=job_id, payload=bytes(body)), f"undecodable job body: {exc}"
        else:
            job, bad = Job(id=job_id), bad or MISSING_BODY
        code = meta.hf if rec.st in ("h", "m") and meta.hf else rec.st
        state = CODE_STATE.get(code, JobState.READY)
        job.id, job.queue, job.state = job_id, self.queue, state
        job.priority, job.max_retries, job.retry_count, job.attempt = meta.p, meta.mr, meta.rc, rec.a
        job.lease_token, job.lease_deadline = rec.t, rec.dl
        job.started_at, job.available_at, job.expires_at = rec.sa, meta.av, meta.x
        job.last_error, job.dead_reason, job.dead_at = meta.le, meta.dr, meta.da
        job.origin_queue = meta.o or (self.queue if state is JobState.DEAD else None)
        if state is not JobState.IN_FLIGHT:
            job.lease_token = job.lease_deadline = None
        if bad is not None:
            job.last_error = CORRUPT_PREFIX + bad
        return job, bad

    def _read_in_flight(self, job_id: str, body: bytes, raw_record: bytes) -> Job | None:
        """:meth:`read_job` of a leased job whose record and body both decode (what a take
        returns), without a :class:`Record`; None for anything else (plain entries included)."""
        parts = raw_record.split(b"|", 5)
        if len(parts) != 6 or body[: len(PLAIN_MARKER)] == PLAIN_MARKER:
            return None
        try:
            meta = META_DEC.decode(parts[5])
            job = self.codec.decode(body)
            job.attempt = int(parts[1] or 0)
            job.started_at = float(parts[3]) if parts[3] else None
            job.lease_deadline = float(parts[4]) if parts[4] else None
            job.lease_token = parts[2].decode() or None
        except (msgspec.DecodeError, SerializationError, ValueError):
            return None
        job.id, job.queue, job.state = job_id, self.queue, JobState.IN_FLIGHT
        job.priority, job.max_retries, job.retry_count = meta.p, meta.mr, meta.rc
        job.available_at, job.expires_at = meta.av, meta.x
        job.last_error, job.dead_reason, job.dead_at = meta.le, meta.dr, meta.da
        job.origin_queue = meta.o or None
        return job

    def read_triples(self, reply: Sequence[Any], start: int = 0) -> list[tuple[Job, str | None]]:
        """``(job, garbage reason)`` per ``id, body, record`` triple of a flat reply, from ``start``.

        An id that is not UTF-8 (something else wrote it into our keys) is garbage too
        (:data:`BAD_ID`): its job carries the id with the bytes escaped; ``reply[i]`` still
        holds the id as stored, to dead-letter it by."""
        return [self.read_stored(reply[i], reply[i + 1], reply[i + 2]) for i in range(start, len(reply), 3)]

    def read_stored(self, raw_id: Any, body: bytes, raw_record: bytes) -> tuple[Job, str | None]:
        """:meth:`read_job` of an id as the store returned it: one that is not UTF-8 (something
        else wrote it into our keys) is garbage (:data:`BAD_ID`), its job carrying the id with
        the bytes escaped."""
        try:
            job_id = text(raw_id)
        except SerializationError:
            escaped = bytes(raw_id).decode(errors="backslashreplace")
            job, _ = self.read_job(escaped, body, raw_record)
            job.last_error = CORRUPT_PREFIX + BAD_ID
            return job, BAD_ID
        return self.read_job(job_id, body, raw_record)

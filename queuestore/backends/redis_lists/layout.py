"""How a redis-lists queue is laid out in Redis: key names, stored records, reading them back.

All keys of queue ``Q`` share the hash tag ``{Q}``, so every script gets all its keys
in KEYS and runs on a cluster. The job body is stored once, in one per-queue hash;
the state sets hold ids only. Key layout (``key_prefix`` ``queue:``):

===========================  =====  ==================================================
key                          type   content
===========================  =====  ==================================================
``queue:{Q}:jobs``           hash   id -> encoded job body (msgpack/JSON, maybe zlib)
``queue:{Q}:meta``           hash   id -> mutable state (:class:`Meta`, msgpack)
``queue:{Q}:ready``          zset   ready ids; score ``(9 - priority) * 1e13 + seq``:
                                    higher priority first, FIFO within a priority
``queue:{Q}:delayed``        zset   delayed ids by due time (epoch s)
``queue:{Q}:inflight``       zset   leased ids by lease deadline (epoch s)
``queue:{Q}:dead``           zset   dead-lettered ids in the order they died
``queue:{Q}:ttl``            zset   waiting ids by ``expires_at``
``queue:{Q}:seq``            str    sequence counter
``queue:{Q}:wake``           list   wake-up tokens for blocked consumers (<= 64)
``queue:{Q}:idem``           zset   idempotency keys by end of their window
``queue:{Q}:moving``         zset   ids on their way to another slot (cross-slot move)
``queue:{Q}:inbox``          zset   receipts of cross-slot moves into Q (one window)
``queue:{Q}:held:<mid>``     zset   ids held by migration ``<mid>``, in hold order
===========================  =====  ==================================================

The first ten keys are the *key block* every script gets as ``KEYS[1..10]``, in the
order of :data:`KEY_SUFFIXES`; the Lua side reads that order from :data:`LUA_PREAMBLE`,
which is generated from the same tuple. The meta record is written by Lua with
``cmsgpack``; the body is never touched by Lua, so any encoding and compression work.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from queuestore._args import text
from queuestore._job import Job, JobCodec, JobState
from queuestore.backends._redis.keys import QueueKeys
from queuestore.errors import DuplicateJobError, JobNotFoundError, LeaseLostError, SerializationError

__all__ = [
    "CORRUPT_PREFIX",
    "KEY_SUFFIXES",
    "LUA_PREAMBLE",
    "MIGRATABLE",
    "SET_OF",
    "STATE_CODE",
    "WAKE",
    "ListsLayout",
    "Meta",
    "check_code",
    "key_block",
    "meta_for",
]

#: the key block every lists script gets as KEYS[1..10], in this order
KEY_SUFFIXES = ("jobs", "meta", "ready", "delayed", "inflight", "dead", "ttl", "seq", "wake", "idem")
WAKE = KEY_SUFFIXES.index("wake")
#: the state code of :attr:`Meta.st` per job state
STATE_CODE = {JobState.READY: "r", JobState.DELAYED: "d", JobState.IN_FLIGHT: "i", JobState.DEAD: "x"}
CODE_STATE = {v: k for k, v in STATE_CODE.items()}
#: the states a migration holds and imports (in-flight jobs stay with their lease)
MIGRATABLE = (JobState.READY, JobState.DELAYED, JobState.DEAD)
#: the sorted set (key suffix) that lists the jobs of each state
_STATE_SUFFIX = {
    JobState.READY: "ready",
    JobState.DELAYED: "delayed",
    JobState.IN_FLIGHT: "inflight",
    JobState.DEAD: "dead",
}
#: index in the key block of each state's sorted set
SET_OF = {state: KEY_SUFFIXES.index(suffix) for state, suffix in _STATE_SUFFIX.items()}
GARBAGE_META = "corrupt or missing job metadata"
MISSING_BODY = "job body is missing"
#: ``Job.last_error`` of a job read from garbage (see :meth:`ListsLayout.read_job`)
CORRUPT_PREFIX = "corrupt: "


def lua_key_constants() -> str:
    """Lua declaring the key-block indexes (``JOBS = 1`` ...), its length ``BLOCK_LEN``, the
    index ``EXTRA`` of the key after it and ``STATE_SET`` (state code -> index of its set),
    generated from :data:`KEY_SUFFIXES` and :data:`STATE_CODE`."""
    names = [suffix.upper() for suffix in KEY_SUFFIXES]
    indexes = [str(i) for i in range(1, len(KEY_SUFFIXES) + 1)]
    sets = ", ".join(f"{STATE_CODE[state]} = {suffix.upper()}" for state, suffix in _STATE_SUFFIX.items())
    return (
        "-- generated from queuestore.backends.redis_lists.layout: the key block is KEYS[1..BLOCK_LEN];\n"
        "-- EXTRA is the one key some scripts get after it (moving, inbox or holding set)\n"
        f"local {', '.join(names)} = {', '.join(indexes)}\n"
        f"local BLOCK_LEN, EXTRA = {len(KEY_SUFFIXES)}, {len(KEY_SUFFIXES) + 1}\n"
        "-- state code -> index of its sorted set in the key block\n"
        f"local STATE_SET = {{{sets}}}\n"
    )


#: what every lists script gets before ``lua/_lib.lua`` (the ``preamble`` of its ScriptSet)
LUA_PREAMBLE = lua_key_constants()


class Meta(msgspec.Struct, kw_only=True):
    """A job's mutable state, as the scripts keep it (short names: it is stored per job)."""

    st: str = "r"  # r ready, d delayed, i in flight, x dead, h held (migration), m moving
    p: int = 0  # priority
    mr: int = 3  # max_retries
    rc: int = 0  # retry_count
    a: int = 0  # attempt
    q: int | None = None  # sequence number (FIFO within a priority; dead order)
    t: str | None = None  # lease token
    dl: float | None = None  # lease deadline
    sa: float | None = None  # started_at
    av: float | None = None  # available_at
    x: float | None = None  # expires_at
    le: str | None = None  # last_error
    dr: str | None = None  # dead_reason
    da: float | None = None  # dead_at
    o: str | None = None  # origin_queue
    hf: str | None = None  # state before held / moving
    mt: str | None = None  # move target


_META_ENC = msgspec.msgpack.Encoder()
_META_DEC = msgspec.msgpack.Decoder(Meta)


def key_block(keys: QueueKeys) -> list[str]:
    """The standard key block of a queue (``KEYS[1..10]`` of every lists script)."""
    return [keys.key(s) for s in KEY_SUFFIXES]


def meta_for(job: Job, state: str = "r") -> bytes:
    """The initial meta record of a job being stored."""
    return _META_ENC.encode(
        Meta(
            st=state,
            p=job.priority,
            mr=job.max_retries,
            rc=job.retry_count,
            a=job.attempt,
            sa=job.started_at,
            av=job.available_at,
            x=job.expires_at,
            le=job.last_error,
            dr=job.dead_reason,
            da=job.dead_at,
            o=job.origin_queue,
        )
    )


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

    __slots__ = ("block", "codec", "keys", "queue")

    def __init__(self, keys: QueueKeys, codec: JobCodec) -> None:
        self.keys = keys
        self.queue = keys.queue
        self.codec = codec
        #: the key block, built once: it is passed on every script call (not to be mutated)
        self.block = key_block(keys)

    def read_job(self, job_id: str, body: bytes, raw_meta: bytes) -> tuple[Job, str | None]:
        """A Job from its stored body and meta; the second item names garbage (or is None).

        Garbage (meta or body missing or undecodable) is never passed off as a job: its
        ``last_error`` is ``"corrupt: <reason>"`` (:data:`CORRUPT_PREFIX`), and an
        undecodable body comes back as the raw bytes in ``payload``.
        """
        bad: str | None = None
        try:
            meta = _META_DEC.decode(raw_meta) if raw_meta else None
        except msgspec.DecodeError:
            meta = None
        if meta is None:
            meta, bad = Meta(st="x", dr=GARBAGE_META), GARBAGE_META
        if body:
            try:
                job = self.codec.decode(body)
            except SerializationError as exc:
                job, bad = Job(id=job_id, payload=bytes(body)), f"undecodable job body: {exc}"
        else:
            job, bad = Job(id=job_id), bad or MISSING_BODY
        code = meta.hf if meta.st in ("h", "m") and meta.hf else meta.st
        state = CODE_STATE.get(code, JobState.READY)
        job.id, job.queue, job.state = job_id, self.queue, state
        job.priority, job.max_retries, job.retry_count, job.attempt = meta.p, meta.mr, meta.rc, meta.a
        job.lease_token, job.lease_deadline = meta.t, meta.dl
        job.started_at, job.available_at, job.expires_at = meta.sa, meta.av, meta.x
        job.last_error, job.dead_reason, job.dead_at = meta.le, meta.dr, meta.da
        job.origin_queue = meta.o or (self.queue if state is JobState.DEAD else None)
        if state is not JobState.IN_FLIGHT:
            job.lease_token = job.lease_deadline = None
        if bad is not None:
            job.last_error = CORRUPT_PREFIX + bad
        return job, bad

    def read_triples(self, reply: Sequence[Any], start: int = 0) -> list[tuple[Job, str | None]]:
        """``(job, garbage reason)`` per ``id, body, meta`` triple of a flat reply, from ``start``."""
        return [
            self.read_job(text(reply[i]), reply[i + 1], reply[i + 2]) for i in range(start, len(reply), 3)
        ]

"""How ``redis-streams`` stores a queue: key names, entry fields, lease tokens, entry ids, and
the decoding of stored entries into jobs.

Key layout (``P`` = ``key_prefix``, default ``queue:``; one hash tag per queue):

=============================  ========  ==============================================
key                            type      holds
=============================  ========  ==============================================
``P{q}:stream``                stream    ready and in-flight jobs (fields j, b, r, m, a,
                                         x, e, o: id, body, retries, max, attempts,
                                         expiry ms, last error, origin); the suffix is
                                         ``stream_name`` when set (it stays under ``{q}``)
``P{q}:idx``                   hash      job id -> entry id | ``D`` delayed | ``X<id>``
                                         dead | ``H<id>`` held | ``M`` moving
``P{q}:leases``                zset      ``group<US>entry id`` -> lease deadline (ms);
                                         ``group<US>@<call id>:<consumer>`` -> the
                                         deadline of a take sent as one transaction
                                         (every entry pending under that consumer,
                                         but one with a record of its own);
                                         ``group<US>+@<call id>:<consumer>`` -> a
                                         mark: an entry of that take was extended
``P{q}:delayed``               zset      delayed job ids by due time (ms)
``P{q}:parked``                hash      job id -> body of a delayed / moving / held job
``P{q}:parked:meta``           hash      job id -> its counters (JSON; held / moving: also
                                         the state it came from, ``s``, and ``due``)
``P{q}:ttl``                   zset      waiting job ids by expiry (ms)
``P{q}:dead``                  stream    dead letters (+ why, at, origin; fan-out: g,
                                         the group it died in)
``P{q}:counters``              hash      enqueued, acked, nacked, dead, expired, lost,
                                         purged, deleted, dead_dropped
``P{q}:idem``                  zset      idempotency key -> end of its window (ms)
``P{q}:calls``                 hash      call id -> the JSON reply of that mutating call
``P{q}:calls:at``              zset      call id -> when it ran (server ms); the last
                                         100000 calls of at most 60 s are kept
``P{q}:held:<migration id>``   stream    a migration's holding area
=============================  ========  ==============================================

``US`` is the unit separator ``\\x1f`` (:data:`SEP`), which no group or consumer name holds.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from queuestore._args import misfit_field, text
from queuestore._codec import JobCodec
from queuestore._job import Job, JobState
from queuestore.backends._redis.calls import new_call_id
from queuestore.backends._redis.keys import QueueKeys
from queuestore.errors import InvalidJobError, SerializationError

__all__ = [
    "CORRUPT_PREFIX",
    "DECODE_ERRORS",
    "HOLDABLE_STATES",
    "MAX_LEASE_SECONDS",
    "SEP",
    "LeaseToken",
    "StreamKeys",
    "call_id",
    "corrupt_job",
    "enqueued_entry_job",
    "entry_job",
    "fields_map",
    "id_after",
    "id_tuple",
    "is_entry_id",
    "job_args",
    "lease_member",
    "ms",
    "parked_fields",
]

_ENTRY_ID = re.compile(r"^\d+(-\d+)?$")
#: the longest lease, lease extension or retry delay (ten years): deadlines stay exact
#: integers in Lua numbers and in the XAUTOCLAIM idle argument
MAX_LEASE_SECONDS = 10 * 365 * 86400.0
#: the separator of lease tokens, lease records and packed ack arguments
SEP = "\x1f"
#: ``Job.last_error`` prefix of a job read from garbage (the same marker as redis-lists'
#: ``CORRUPT_PREFIX``): the migration tells such a job from a real one by it
CORRUPT_PREFIX = "corrupt: "
#: what decoding stored fields can raise on garbage
DECODE_ERRORS = (SerializationError, ValueError, KeyError, TypeError)
#: the states a migration holds and imports, by their stored name (the ``s`` field of a held entry)
HOLDABLE_STATES = {b"ready": JobState.READY, b"delayed": JobState.DELAYED, b"dead": JobState.DEAD}


class StreamKeys:
    """Every key of one queue, all under its hash tag (see the layout above)."""

    __slots__ = (
        "calls",
        "calls_at",
        "counters",
        "dead",
        "delayed",
        "idem",
        "idx",
        "leases",
        "meta",
        "parked",
        "q",
        "record",
        "stream",
        "ttl",
    )

    def __init__(self, q: QueueKeys, stream_name: str | None) -> None:
        self.q = q
        self.stream = q.key(stream_name or "stream")
        self.idx = q.key("idx")
        self.delayed = q.key("delayed")
        self.parked = q.key("parked")
        self.meta = q.key("parked:meta")
        self.ttl = q.key("ttl")
        self.dead = q.key("dead")
        self.counters = q.key("counters")
        self.idem = q.key("idem")
        self.leases = q.key("leases")
        self.calls = q.key("calls")
        self.calls_at = q.key("calls:at")
        #: the queue's migration record (see queuestore.backends._redis.record)
        self.record = q.key("migration")

    def core(self) -> list[str]:
        """KEYS 1..11 of every script."""
        return [
            self.stream, self.idx, self.delayed, self.parked, self.meta, self.ttl, self.dead, self.counters,
            self.leases, self.calls, self.calls_at,
        ]  # fmt: skip

    def held(self, migration_id: str) -> str:
        """The holding area of one migration.

        Raises:
            InvalidJobError: the id contains braces or whitespace.
        """
        if not migration_id or set("{}\r\n\x00 ") & set(migration_id):
            raise InvalidJobError("migration_id", f"invalid migration id {migration_id!r}")
        return self.q.key(f"held:{migration_id}")


@dataclass(frozen=True)
class LeaseToken:
    """What a lease is: group, consumer, entry id and the entry's delivery count then."""

    group: str
    consumer: str
    entry_id: str
    deliveries: int

    def encode(self) -> str:
        """The token string carried by ``Job.lease_token``."""
        return SEP.join((self.group, self.consumer, self.entry_id, str(self.deliveries)))

    @classmethod
    def decode(cls, token: str) -> LeaseToken:
        """Parse a token.

        Raises:
            InvalidJobError: not a redis-streams lease token.
        """
        parts = token.split(SEP)
        if len(parts) != 4 or not (parts[3].isascii() and parts[3].isdigit()):
            raise InvalidJobError("lease_token", "not a redis-streams lease token")
        return cls(parts[0], parts[1], parts[2], int(parts[3]))

    def args(self) -> list[str]:
        """The four per-job settle arguments after the job id."""
        return [self.group, self.consumer, self.entry_id, str(self.deliveries)]


def lease_member(group: str, entry_id: str) -> str:
    """The member of the leases zset that records ``group``'s lease on an entry."""
    return f"{group}{SEP}{entry_id}"


def ms(seconds: float) -> int:
    """Epoch seconds to integer milliseconds."""
    return int(seconds * 1000)


def call_id() -> str:
    """A fresh call id: the scripts record a mutating call's reply under it, so a retry of the
    same call (same id) gets that reply instead of acting twice
    (:class:`~queuestore.backends._redis.calls.CallIds`)."""
    return new_call_id()


def is_entry_id(value: str) -> bool:
    """True for ``1712345678901-0`` (or bare milliseconds)."""
    return bool(_ENTRY_ID.match(value))


def id_tuple(value: str) -> tuple[int, int]:
    """An entry id as a comparable tuple."""
    a, _, b = value.partition("-")
    return int(a), int(b or 0)


def id_after(value: str) -> str:
    """The smallest entry id greater than ``value``."""
    a, b = id_tuple(value)
    return f"{a}-{b + 1}"


def fields_map(fields: Any) -> dict[str, bytes]:
    """Entry fields as ``{name: bytes}`` from a flat list (scripts) or a dict (redis-py)."""
    if isinstance(fields, Mapping):
        items: Sequence[tuple[Any, Any]] = list(fields.items())
    else:
        items = list(zip(fields[::2], fields[1::2], strict=True))
    return {_name(k): v if isinstance(v, bytes) else str(v).encode() for k, v in items}


def _name(key: Any) -> str:
    """A field name as ``str``; a name that is not UTF-8 (garbage written by something else)
    keeps its bytes escaped, so the entry's fields can still be read and dead-lettered."""
    return key.decode(errors="backslashreplace") if isinstance(key, bytes) else str(key)


def entry_job(
    codec: JobCodec, queue: str, fields: Mapping[str, bytes], state: JobState, deliveries: int = 0
) -> Job:
    """Rebuild a Job from stored fields: the body, overlaid with the counters kept beside it.

    ``deliveries`` is the pending entry's delivery count (0 when not in flight).

    Raises:
        SerializationError: the body does not decode.
    """
    job = codec.decode(fields.get("b", b""))
    if "j" in fields:
        job.id = text(fields["j"])
    r, a = int(fields.get("r", b"0") or 0), int(fields.get("a", b"0") or 0)
    job.retry_count = r + max(deliveries - 1, 0)
    job.attempt = a + deliveries
    if "e" in fields:
        job.last_error = fields["e"].decode(errors="replace")
    if "o" in fields:
        job.origin_queue = text(fields["o"])
    if "why" in fields:
        job.dead_reason = fields["why"].decode(errors="replace")
    if "at" in fields:
        job.dead_at = int(fields["at"]) / 1000.0
    job.queue, job.state = queue, state
    job.lease_token = job.lease_deadline = None
    if state in (JobState.READY, JobState.IN_FLIGHT):
        job.available_at = None
    if state != JobState.DEAD:
        job.dead_reason = job.dead_at = None
    return job


def enqueued_entry_job(codec: JobCodec, raw: Sequence[Any], deliveries: int) -> Job | None:
    """The in-flight job of an entry as enqueue writes it, read at its fields' places (``j b r
    m a x``, flat, as a script returns it), or None when ``raw`` is not of that shape or does
    not decode (:func:`entry_job` then reads it, and says why). The caller sets its queue and
    lease. The same job as :func:`entry_job` gives, without a map of the fields."""
    if type(raw) is not list or len(raw) != 12:
        return None
    if raw[0] != b"j" or raw[2] != b"b" or raw[4] != b"r" or raw[8] != b"a":
        return None
    try:
        job = codec.decode(raw[3])
        job.id = raw[1].decode()
        retries, attempts = _COUNTS.get(raw[5]), _COUNTS.get(raw[9])
        if retries is None:
            retries = int(raw[5])
        if attempts is None:
            attempts = int(raw[9])
    except (SerializationError, ValueError, AttributeError, TypeError):
        return None
    retries = retries + deliveries - 1 if deliveries > 1 else retries
    # set only what differs from the body's value (a Struct's attribute set is the slow path)
    if job.retry_count != retries:
        job.retry_count = retries
    job.attempt, job.state = attempts + deliveries, _IN_FLIGHT
    if job.available_at is not None or job.dead_reason is not None or job.dead_at is not None:
        job.available_at = job.dead_reason = job.dead_at = None
    return job


_IN_FLIGHT = JobState.IN_FLIGHT
#: an entry's small counters as enqueue writes them, read without ``int()``
_COUNTS = {str(n).encode(): n for n in range(10)}


def parked_fields(jid: Any, body: bytes, meta: bytes | None) -> dict[str, Any]:
    """The fields of a parked job (delayed, held or moving): its body plus its JSON meta.

    Raises:
        ValueError: the meta is not a JSON object.
    """
    fields: dict[str, Any] = {"j": jid, "b": body}
    if meta:
        decoded = json.loads(meta)
        if not isinstance(decoded, dict):
            raise ValueError(f"parked meta is not a JSON object: {meta[:80]!r}")
        fields.update({k: v for k, v in decoded.items() if isinstance(v, str | int) and v != ""})
    return fields


def corrupt_job(queue: str, fields: Mapping[str, Any], state: JobState, reason: str) -> Job:
    """A stand-in for garbage that must stay addressable (a held entry): its id, the state it
    was in, the raw body as payload and ``last_error`` = :data:`CORRUPT_PREFIX` + reason."""
    f = fields_map(fields)
    jid = f.get("j", b"").decode(errors="replace")
    job = Job(id=jid, queue=queue, payload=f.get("b", b""), state=state, last_error=CORRUPT_PREFIX + reason)
    with contextlib.suppress(ValueError):
        job.retry_count, job.max_retries = int(f.get("r", b"0") or 0), int(f.get("m", b"0") or 0)
    return job


def job_args(
    codec: JobCodec, queue: str, job: Job, state: JobState | None = None, *, idem: bool = True
) -> list[Any]:
    """The nine per-job arguments of the enqueue script.

    Raises:
        InvalidJobError: a field cannot be encoded, or is of a type it would not decode as
            (the field is named).
    """
    # the id and the queue are not repeated in the body: the entry's "j" field and the stream
    # carry them (an empty id encodes in 4 bytes and decodes without generating one)
    stored = msgspec.structs.replace(
        job, id="", queue="", lease_token=None, lease_deadline=None, state=state or JobState.READY
    )
    try:  # decoded back once: a job stored is a job that can be delivered
        body = codec.encode_checked(stored)
    except SerializationError as exc:  # a field of the wrong type: name it
        raise InvalidJobError(misfit_field(exc), str(exc)) from None
    due = ms(job.available_at) if job.available_at is not None else 0
    target = "dead" if state == JobState.DEAD else ("delayed" if state == JobState.DELAYED else "ready")
    return [
        job.id,
        body,
        job.retry_count,
        job.max_retries,
        job.attempt,
        ms(job.expires_at) if job.expires_at is not None else 0,
        due,
        (job.idempotency_key or "") if idem else "",
        target,
    ]

"""Options, key layout, lease tokens and entry decoding of the ``redis-streams`` backend.

Kept apart from the backend classes so the wire format (stream entry fields,
parked-job meta, lease tokens) is defined in one place.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from queuestore._durations import Seconds
from queuestore._job import Job, JobCodec, JobState
from queuestore.backends._redis.base import RedisBackendOptions
from queuestore.backends._redis.keys import QueueKeys
from queuestore.errors import ConfigurationError, InvalidJobError, SerializationError

__all__ = [
    "CORRUPT_PREFIX",
    "LeaseToken",
    "RedisStreamsOptions",
    "StreamKeys",
    "corrupt_job",
    "entry_job",
    "fields_map",
    "id_after",
    "is_entry_id",
    "ms",
    "parked_fields",
]

_ENTRY_ID = re.compile(r"^\d+(-\d+)?$")
_SEP = "\x1f"
#: ``Job.last_error`` prefix of a job read from garbage (the same marker as redis-lists'
#: ``CORRUPT_PREFIX``): the migration tells such a job from a real one by it
CORRUPT_PREFIX = "corrupt: "
#: what decoding stored fields can raise on garbage
DECODE_ERRORS = (SerializationError, ValueError, KeyError, TypeError)


class RedisStreamsOptions(RedisBackendOptions, kw_only=True, forbid_unknown_fields=True):
    """Options of ``redis-streams`` (seed: RedisStreamsConfig) on top of the common Redis ones.

    ``claim_min_idle`` is the default lease length, and also the idle time after
    which a pending entry *without* a lease record (an orphan) is taken with
    XAUTOCLAIM. ``visibility_timeout`` is accepted as its alias: when only one is
    set it is used; when both are set they must agree.
    """

    stream_name: str | None = None
    consumer_group: str = "workers"
    consumer_name: str | None = None
    groups: tuple[str, ...] = ()
    max_length: int = 0
    claim_min_idle: Seconds | None = None
    claim_count: int = 100
    retention: Literal["delete", "retain"] = "delete"


def check_streams_options(o: RedisStreamsOptions) -> None:
    """Range and consistency checks.

    Raises:
        ConfigurationError: naming ``options.<field>``.
    """
    if o.claim_min_idle is not None:
        if o.claim_min_idle <= 0:
            raise ConfigurationError("options.claim_min_idle", "must be > 0")
        if o.visibility_timeout != 30.0 and o.visibility_timeout != o.claim_min_idle:
            raise ConfigurationError(
                "options.claim_min_idle",
                f"conflicts with visibility_timeout ({float(o.visibility_timeout)}s); "
                "they are aliases: set one",
            )
    if o.claim_count < 1:
        raise ConfigurationError("options.claim_count", "must be >= 1")
    if o.max_length < 0:
        raise ConfigurationError("options.max_length", "must be >= 0 (0 = no length bound)")
    if o.stream_name is not None and (not o.stream_name or set("{}\r\n\x00 ") & set(o.stream_name)):
        raise ConfigurationError(
            "options.stream_name", "must be non-empty, without braces or whitespace (the queue is the tag)"
        )
    for field, name in [("consumer_group", o.consumer_group), ("consumer_name", o.consumer_name)] + [
        (f"groups[{i}]", g) for i, g in enumerate(o.groups)
    ]:
        if name is not None and (not name or _SEP in name or "\t" in name):
            raise ConfigurationError(f"options.{field}", f"invalid name {name!r}")


def default_consumer_name() -> str:
    """A consumer name unique to this process and backend instance."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class StreamKeys:
    """Every key of one queue, all under its hash tag (see the layout in ``redis_streams``)."""

    __slots__ = (
        "counters",
        "dead",
        "delayed",
        "idem",
        "idx",
        "leases",
        "meta",
        "parked",
        "q",
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

    def core(self) -> list[str]:
        """KEYS 1..9 of every script."""
        return [
            self.stream, self.idx, self.delayed, self.parked, self.meta, self.ttl, self.dead, self.counters,
            self.leases,
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
        return _SEP.join((self.group, self.consumer, self.entry_id, str(self.deliveries)))

    @classmethod
    def decode(cls, token: str) -> LeaseToken:
        """Parse a token.

        Raises:
            InvalidJobError: not a redis-streams lease token.
        """
        parts = token.split(_SEP)
        if len(parts) != 4 or not parts[3].isdigit():
            raise InvalidJobError("lease_token", "not a redis-streams lease token")
        return cls(parts[0], parts[1], parts[2], int(parts[3]))

    def args(self) -> list[str]:
        """The five per-job settle arguments after the job id."""
        return [self.group, self.consumer, self.entry_id, str(self.deliveries)]


def ms(seconds: float) -> int:
    """Epoch seconds to integer milliseconds."""
    return int(seconds * 1000)


def now_ms() -> int:
    """The current time in milliseconds."""
    return ms(time.time())


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


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def fields_map(fields: Any) -> dict[str, bytes]:
    """Entry fields as ``{name: bytes}`` from a flat list (scripts) or a dict (redis-py)."""
    if isinstance(fields, Mapping):
        items: Sequence[tuple[Any, Any]] = list(fields.items())
    else:
        items = list(zip(fields[::2], fields[1::2], strict=True))
    return {_s(k): v if isinstance(v, bytes) else str(v).encode() for k, v in items}


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
        job.id = fields["j"].decode()
    r, a = int(fields.get("r", b"0") or 0), int(fields.get("a", b"0") or 0)
    job.retry_count = r + max(deliveries - 1, 0)
    job.attempt = a + deliveries
    if "e" in fields:
        job.last_error = fields["e"].decode(errors="replace")
    if "o" in fields:
        job.origin_queue = fields["o"].decode()
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
    """The nine per-job arguments of the enqueue script."""
    stored = msgspec.structs.replace(
        job, queue=queue, lease_token=None, lease_deadline=None, state=state or JobState.READY
    )
    due = ms(job.available_at) if job.available_at is not None else 0
    target = "dead" if state == JobState.DEAD else ("delayed" if state == JobState.DELAYED else "ready")
    return [
        job.id,
        codec.encode(stored),
        job.retry_count,
        job.max_retries,
        job.attempt,
        ms(job.expires_at) if job.expires_at is not None else 0,
        due,
        (job.idempotency_key or "") if idem else "",
        target,
    ]

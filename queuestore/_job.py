"""The Job model: its fields, their checks, and the body a layout stores beside a record.

A job is a msgspec Struct; :mod:`queuestore._codec` puts it on the wire. Payloads must be plain
data (dict, list, str, int, float, bool, None, bytes for msgpack): never pickle.
"""

from __future__ import annotations

import enum
import math
import os
import time
from datetime import timedelta
from typing import Any

import msgspec

from queuestore._durations import to_seconds
from queuestore.errors import ConfigurationError, InvalidJobError

__all__ = [
    "ALL",
    "PRIORITY_MAX",
    "PRIORITY_MIN",
    "AllJobs",
    "Job",
    "JobBody",
    "JobState",
    "new_job_id",
    "validate_job",
]

PRIORITY_MIN = 0
PRIORITY_MAX = 9


def new_job_id() -> str:
    """A new random job id (32 hex characters: 128 random bits from the OS)."""
    return os.urandom(16).hex()


class JobState(enum.StrEnum):
    """Where a stored job is. Acknowledged jobs are gone and have no state."""

    READY = "ready"
    DELAYED = "delayed"
    IN_FLIGHT = "in_flight"
    DEAD = "dead"


class AllJobs:
    """The type of :data:`ALL`: "every job in the state", where an operator call takes ids.

    There is one instance; ``AllJobs()`` returns it.
    """

    __slots__ = ()
    _instance: AllJobs | None = None

    def __new__(cls) -> AllJobs:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "queuestore.ALL"

    def __reduce__(self) -> str:
        return "ALL"


#: every job in the state (``redrive(ALL)``, ``purge(JobState.DEAD, ALL)``)
ALL = AllJobs()


class Job(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A unit of work.

    ``priority`` is 0..9, higher first; FIFO within a priority. ``available_at``
    (epoch seconds) delays a job; ``expires_at`` drops it (counted as expired)
    if it is still waiting then. ``attempt`` counts deliveries, ``retry_count``
    counts nacks/expired leases that sent it back; past ``max_retries`` it is
    dead-lettered. ``lease_token`` and ``lease_deadline`` are set on a job that
    ``dequeue`` returned: pass that Job to ``ack``/``nack``/``move`` and a stale
    holder is refused with :class:`~queuestore.LeaseLostError`.

    Attributes:
        id: unique within the store; generated (32 hex characters) when not given. An id
            already stored is never stored twice.
        type: a label for the application (e.g. the handler's name).
        queue: the queue the job belongs to: ``enqueue`` sets it on the stored job, and
            refuses a job set for another queue.
        payload: the work: plain data (dict, list, str, int, float, bool, None; bytes with
            msgpack), never pickled.
        priority: 0..9, higher first; FIFO within a priority.
        created_at: when the job was made (epoch seconds).
        started_at: when its current lease began (set by ``dequeue``).
        completed_at: free for the application: an acknowledged job is gone, so no backend
            sets it.
        retry_count: how many times a nack or an expired lease sent it back.
        max_retries: how many times it may come back before it is dead-lettered.
        metadata: string key/value pairs for the application.
        tags: labels for the application.
        attempt: deliveries so far (1 on the first ``dequeue``).
        lease_token: set by ``dequeue``: identifies this holder's lease.
        lease_deadline: set by ``dequeue``: when the lease expires (epoch seconds).
        available_at: not delivered before this time (epoch seconds): a delayed job.
        expires_at: dropped if still waiting at this time (epoch seconds).
        idempotency_key: another job with the same key is not stored within the
            backend's ``idempotency_window``.
        last_error: the reason of the last nack or expired lease.
        dead_reason: why it was dead-lettered.
        dead_at: when it was dead-lettered (epoch seconds).
        origin_queue: the queue it was first moved from, on a job that ``move`` delivered.
        state: where the stored job is, on a job that ``peek``, ``iter`` or a lookup returned.
    """

    id: str = msgspec.field(default_factory=new_job_id)
    type: str = ""
    queue: str = ""
    payload: Any = None
    priority: int = 0
    created_at: float = msgspec.field(default_factory=time.time)
    started_at: float | None = None
    completed_at: float | None = None
    retry_count: int = 0
    max_retries: int = 3
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    tags: list[str] = msgspec.field(default_factory=list)
    # reliability
    attempt: int = 0
    lease_token: str | None = None
    lease_deadline: float | None = None
    available_at: float | None = None
    expires_at: float | None = None
    idempotency_key: str | None = None
    last_error: str | None = None
    dead_reason: str | None = None
    dead_at: float | None = None
    origin_queue: str | None = None
    state: JobState = JobState.READY

    def delayed(self, delay: float | timedelta) -> Job:
        """Return a copy that becomes available ``delay`` from now.

        Raises:
            InvalidJobError: ``delay`` is not a duration of 0 to 100 years.
        """
        return msgspec.structs.replace(self, available_at=time.time() + _duration(delay, "delay"))

    def with_ttl(self, ttl: float | timedelta) -> Job:
        """Return a copy that expires ``ttl`` from now if nobody took it.

        Raises:
            InvalidJobError: ``ttl`` is not a duration of 0 to 100 years.
        """
        return msgspec.structs.replace(self, expires_at=time.time() + _duration(ttl, "ttl"))


def _duration(value: float | timedelta, field: str) -> float:
    try:
        return to_seconds(value, field)
    except ConfigurationError as exc:
        raise InvalidJobError(field, exc.message) from None


#: the latest epoch time a job may carry (the end of year 9999)
_MAX_EPOCH = 253402300799.0


def _finite(v: float | None) -> bool:
    return v is None or (isinstance(v, int | float) and math.isfinite(v) and abs(v) <= _MAX_EPOCH)


def utf8_text(value: object) -> bool:
    """Whether ``value`` is a non-empty str that UTF-8 carries (a lone surrogate does not): what
    an id or token must be to reach a store."""
    if type(value) is not str or not value:
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def validate_job(job: Job) -> None:
    """Check a job before it is stored.

    Raises:
        InvalidJobError: naming the offending field.
    """
    if not isinstance(job, Job):
        raise InvalidJobError("job", f"expected a queuestore.Job, got {type(job).__name__}")
    if not isinstance(job.id, str) or not job.id or len(job.id) > 256:
        raise InvalidJobError("id", "must be a non-empty string of at most 256 characters")
    if not utf8_text(job.id):
        raise InvalidJobError("id", "must be text UTF-8 can carry (no lone surrogates)")
    if isinstance(job.priority, bool) or not isinstance(job.priority, int):
        raise InvalidJobError("priority", f"must be an int, got {type(job.priority).__name__}")
    if not PRIORITY_MIN <= job.priority <= PRIORITY_MAX:
        raise InvalidJobError(
            "priority", f"must be between {PRIORITY_MIN} and {PRIORITY_MAX}, got {job.priority}"
        )
    if isinstance(job.max_retries, bool) or not isinstance(job.max_retries, int) or job.max_retries < 0:
        raise InvalidJobError("max_retries", f"must be an int >= 0, got {job.max_retries!r}")
    if isinstance(job.retry_count, bool) or not isinstance(job.retry_count, int) or job.retry_count < 0:
        raise InvalidJobError("retry_count", f"must be an int >= 0, got {job.retry_count!r}")
    for name in ("available_at", "expires_at", "created_at"):
        if not _finite(getattr(job, name)):
            raise InvalidJobError(name, "must be a finite epoch time in seconds, at most year 9999")


class JobBody(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The part of a job that a layout keeping a record beside the body stores as the body:
    the fields no record carries. It decodes as a :class:`Job` (the missing fields take their
    defaults, and the reader sets them from the record)."""

    type: str = ""
    payload: Any = None
    created_at: float
    completed_at: float | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    tags: list[str] = msgspec.field(default_factory=list)
    idempotency_key: str | None = None

    @classmethod
    def of(cls, job: Job) -> JobBody:
        """The body of ``job``."""
        return cls(
            type=job.type,
            payload=job.payload,
            created_at=job.created_at,
            completed_at=job.completed_at,
            metadata=job.metadata,
            tags=job.tags,
            idempotency_key=job.idempotency_key,
        )

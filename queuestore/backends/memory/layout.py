"""How the memory store keeps a job: a private copy in a :class:`Record` that says where it sits.

The memory twin of a Redis backend's key names and stored record format. A job is
stored as a private copy (never the caller's object), made through the wire
encoding so that it holds what a real store would return, and handed out as a
fresh copy, so no mutable payload is ever shared with a caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from queuestore._args import check_job_queue, misfit_field
from queuestore._codec import JobCodec
from queuestore._job import Job, JobState, validate_job
from queuestore.errors import InvalidJobError, SerializationError

__all__ = [
    "HELD",
    "LEASE_EXPIRED",
    "WALK_ORDER",
    "Record",
    "clear_lease",
    "copy_job",
    "stored_copy",
]

#: ``Record.where`` of a job in a migration's holding area (or between two indexes)
HELD = "held"
#: reason recorded on a job dead-lettered because its last lease expired
LEASE_EXPIRED = "lease expired"
#: the states a queue keeps an index for, in the order a walk visits them
WALK_ORDER = (JobState.READY, JobState.DELAYED, JobState.IN_FLIGHT, JobState.DEAD)

_COPY = JobCodec()  # msgpack: round-trips every payload a backend accepts


@dataclass(slots=True)
class Record:
    """A stored job and where it sits. ``rank``/``seq`` are its position in its index."""

    job: Job
    where: str
    rank: float = 0.0
    seq: int = 0
    held_from: JobState | None = None


def clear_lease(job: Job) -> None:
    """Forget a job's lease (token and deadline)."""
    job.lease_token = None
    job.lease_deadline = None


def copy_job(job: Job) -> Job:
    """A deep copy of a job, through the wire encoding (so it is what a real store returns)."""
    return _COPY.decode(_COPY.encode(job))


def stored_copy(job: Job, queue: str, codec: JobCodec) -> Job:
    """Validate a caller's ``job`` for ``queue`` and return the private copy to store.

    The copy goes through ``codec``, the backend's wire format, so a payload that
    format cannot carry is refused here, as a Redis backend would refuse it.

    Raises:
        InvalidJobError: naming the field (``payload`` when it is not encodable).
    """
    validate_job(job)
    check_job_queue(job, queue)
    data = codec.encode(job)
    try:
        return codec.decode(data)
    except SerializationError as exc:  # a field of the wrong type: name it
        raise InvalidJobError(misfit_field(exc), str(exc)) from None

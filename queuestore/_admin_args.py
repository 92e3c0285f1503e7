"""Argument checks of the operator calls every backend shares: ``redrive``, ``purge``, ``delete``.

Each helper turns one caller input into what a backend works with, or raises
:class:`~queuestore.InvalidJobError` naming the argument. Nothing here talks to a store.
"""

from __future__ import annotations

from collections.abc import Sequence

from queuestore._args import checked_job_ids
from queuestore._job import AllJobs, JobState, utf8_text
from queuestore.errors import InvalidJobError

__all__ = ["PAGE", "PURGEABLE", "delete_id", "purge_state", "redrive_target", "selected_ids"]

#: jobs one atomic step of ``redrive(ALL)`` / ``purge(state, ALL)`` handles (and ids per step)
PAGE = 500
#: the states ``purge`` takes (a leased job is settled by its holder, or removed by ``delete``)
PURGEABLE = (JobState.READY, JobState.DELAYED, JobState.DEAD)


def selected_ids(job_ids: Sequence[str] | AllJobs) -> list[str] | None:
    """The ids of an operator call, checked and without repeats; None for ``ALL``.

    Raises:
        InvalidJobError: ``job_ids`` is neither ``ALL`` nor a sequence of str (``field="job_ids"``).
    """
    if isinstance(job_ids, AllJobs):
        return None
    return list(dict.fromkeys(checked_job_ids(job_ids)))


def purge_state(state: object) -> JobState:
    """The state ``purge`` was asked to empty.

    Raises:
        InvalidJobError: ``state`` is not READY, DELAYED or DEAD (``field="state"``).
    """
    try:
        checked = JobState(state) if isinstance(state, str) else None
    except ValueError:
        checked = None
    if checked is None:
        raise InvalidJobError("state", f"must be a JobState, got {state!r}")
    if checked not in PURGEABLE:
        raise InvalidJobError(
            "state", f"can purge ready, delayed or dead jobs, not {checked!s} (delete() removes a leased job)"
        )
    return checked


def redrive_target(to_queue: str | None, queue: str) -> str | None:
    """The queue ``redrive`` moves jobs to; None when they stay in ``queue``.

    Raises:
        InvalidJobError: ``to_queue`` is empty or not a str (``field="to_queue"``).
    """
    if to_queue is None or to_queue == queue:
        return None
    if not isinstance(to_queue, str) or not to_queue:
        raise InvalidJobError("to_queue", f"must be a non-empty queue name, got {to_queue!r}")
    return to_queue


def delete_id(job_id: object) -> str:
    """The id ``delete`` was given.

    Raises:
        InvalidJobError: not a non-empty str (``field="job_id"``).
    """
    if not isinstance(job_id, str) or not job_id:
        raise InvalidJobError("job_id", f"must be a non-empty job id, got {job_id!r}")
    if not utf8_text(job_id):
        raise InvalidJobError("job_id", "must be text UTF-8 can carry (no lone surrogates)")
    return job_id

"""``dlq redrive`` and ``dlq purge``: an operator's hand on dead letters (and on ready or delayed
jobs, for purge). Each works by id (``--id``, repeatable) or on every job of the state
(``--all``); the backend walks ``--all`` in bounded pages.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from queuestore._job import ALL, AllJobs, JobState
from queuestore.cli._output import Out
from queuestore.cli._target import Target, UsageError

__all__ = ["PURGE_STATES", "purge", "redrive", "selection"]

#: the CLI's names of the states ``purge`` takes
PURGE_STATES = {"dead": JobState.DEAD, "ready": JobState.READY, "delayed": JobState.DELAYED}
#: the depth field of BackendStats that counts each of them
_DEPTH = {JobState.DEAD: "dead", JobState.READY: "queue_depth", JobState.DELAYED: "delayed"}


def selection(ids: Sequence[str], every: bool) -> list[str] | AllJobs:
    """``--id ...`` or ``--all`` (exactly one of them).

    Raises:
        UsageError: neither or both.
    """
    if every and ids:
        raise UsageError("give either --id ID (repeatable) or --all, not both")
    if not every and not ids:
        raise UsageError("say which jobs: --id ID (repeatable) or --all")
    return ALL if every else list(dict.fromkeys(ids))


def _which(chosen: list[str] | AllJobs, state: str) -> str:
    return f"every {state} job" if isinstance(chosen, AllJobs) else f"{len(chosen)} listed job(s)"


def _same_backend(target: Target, queue: str, to: str) -> None:
    """A redrive writes into ``to``'s keys on ``queue``'s backend: when the config serves ``to``
    with another backend, the jobs would land where nothing reads them. Refuse that.

    Raises:
        UsageError: ``to`` is configured on another backend.
    """
    config = target.storage_config(queue)
    if to not in config.queues:
        return
    mine, theirs = config.backend_config_for_queue(queue).name, config.backend_config_for_queue(to).name
    if mine != theirs:
        raise UsageError(
            f"--to {to}: that queue is served by backend {theirs!r}, {queue} by {mine!r}; "
            "a redrive stays on one backend (migrate the queue instead)"
        )


async def redrive(target: Target, out: Out, queue: str, chosen: list[str] | AllJobs, to: str | None) -> int:
    """Redrive dead letters of ``queue`` (back to ready there, or into ``to``). Returns 0.

    Raises:
        UsageError, ConfigurationError: see :meth:`Target.open`.
        InvalidJobError, BackendError: the backend refused or failed.
    """
    if to and to != queue:
        _same_backend(target, queue, to)
    async with target.open(queue) as manager:
        backend = manager.get_backend(queue)
        n = await backend.redrive(chosen, to_queue=to)
    if out.json:
        out.data({"queue": queue, "to": to or queue, "redriven": n})
    else:
        where = f" into {to}" if to and to != queue else ""
        out.line(f"redrove {n} dead job(s) of {queue}{where} ({_which(chosen, 'dead')} asked)")
    return 0


async def purge(
    target: Target, out: Out, queue: str, state: str, chosen: list[str] | AllJobs, *, yes: bool
) -> int:
    """Remove jobs of ``queue`` in ``state``, after a confirmation on the terminal unless ``yes``.

    Returns 0 when done, 1 when the confirmation was declined (nothing removed).

    Raises:
        UsageError, ConfigurationError: see :meth:`Target.open`.
        InvalidJobError, BackendError: the backend refused or failed.
    """
    job_state = PURGE_STATES[state]
    async with target.open(queue) as manager:
        backend = manager.get_backend(queue)
        if not yes:
            if isinstance(chosen, AllJobs):
                stats = await backend.stats()
                what = f"all {getattr(stats, _DEPTH[job_state])} {state} job(s)"
            else:
                what = f"{len(chosen)} listed job(s), those that are {state}"
            if not click.confirm(f"Purge {what} of {queue}? They cannot be recovered", err=True):
                out.note("not confirmed: nothing was purged")
                return 1
        n = await backend.purge(job_state, chosen)
    if out.json:
        out.data({"queue": queue, "state": state, "purged": n})
    else:
        out.line(f"purged {n} {state} job(s) of {queue} ({_which(chosen, state)} asked)")
    return 0

"""``migrate plan | run | status | cancel``.

``run`` drives a :class:`~queuestore.MigrationManager` in this process, shows its
progress, and records every status change in a status file (``_statefile``) so that
``cancel`` works from other processes on the same machine; ``status`` reads the migration
record in the source's store (written by whichever process runs the migration), and the
status file only where the store keeps none. Ctrl-C (SIGINT)
or SIGTERM cancels the run cleanly: the batch in hand is finished, every job is in the
source or the target exactly once, and running the same ``migrate run`` again resumes.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from queuestore.abc import MigrationSupport
from queuestore.cli import _statefile
from queuestore.cli._output import Out
from queuestore.cli._progress import PlainProgress, Reporter, RichProgress, SilentProgress, describe
from queuestore.cli._run import EXIT_INTERRUPTED
from queuestore.cli._target import Target, UsageError
from queuestore.migration import (
    MigrationManager,
    MigrationOptions,
    MigrationPhase,
    MigrationStatus,
    MigrationTool,
)
from queuestore.migration._home import owner_dead_here, owner_pid
from queuestore.migration._record import read_status

__all__ = ["cancel", "plan", "run", "status"]


async def plan(target: Target, out: Out, queue: str, to: str, batch_size: int) -> int:
    """Print what migrating ``queue`` to ``to`` would do. Changes nothing.

    Raises:
        ConfigurationError: bad options or config (field named).
        MigrationError: unknown queue or target.
        BackendError: a backend failed.
    """
    options = MigrationOptions(target_backend=to, batch_size=batch_size)
    options.check()
    async with target.open(queue) as manager:
        result = await MigrationTool(manager).plan_migration(queue, options)
    if out.json:
        out.data(result)
        return 0
    src, dst = result.source_backend, result.target_backend
    out.line(f"migration plan {result.migration_id}: {queue} from {src} to {dst}")
    rows: list[tuple[str, Any]] = [
        ("jobs", result.job_count),
        *((f"  {state}", n) for state, n in sorted(result.jobs_by_state.items())),
        ("held by an unfinished run", result.held_jobs),
        ("estimated duration (s)", round(result.estimated_duration, 2)),
        ("measured rate (jobs/s)", round(result.sample_rate, 1)),
        ("batch size", result.batch_size),
    ]
    out.table("plan", ("", "value"), rows)
    for title, items in (
        ("requirement", result.requirements),
        ("warning", result.warnings),
        ("recommendation", result.recommendations),
    ):
        for item in items:
            out.line(f"{title}: {item}")
    return 0


def _resume_command(queue: str, to: str) -> str:
    return f"queuestore migrate run {queue} --to {to} (with the same --config or --url/--type)"


def _reporter(out: Out) -> Reporter:
    if out.json:
        return SilentProgress()
    if sys.stdout.isatty():
        return RichProgress(out.console)
    return PlainProgress(out.console)


async def run(
    target: Target, out: Out, queue: str, to: str, *, dry_run: bool, batch_size: int, verify: bool
) -> int:
    """Migrate ``queue`` to ``to`` with progress; Ctrl-C cancels cleanly (see the module docstring).

    Returns 0 when completed, 130 when cancelled, 1 when failed or rolled back.

    Raises:
        ConfigurationError: bad options or config (field named).
        MigrationError: unknown queue or target, or wrong source.
        MigrationInProgressError: the queue is migrating in this process already.
        BackendError: a backend could not connect.
        OSError: the status file cannot be written (checked before anything moves).
    """
    options = MigrationOptions(target_backend=to, batch_size=batch_size, verify_data=verify, dry_run=dry_run)
    options.check()
    resume = _resume_command(queue, to)
    interrupted = False
    if not dry_run:
        _statefile.check_writable()  # fail before moving anything, not midway

    def record(snapshot: MigrationStatus) -> None:
        if not dry_run:
            _statefile.save(
                _statefile.RunRecord(
                    status=snapshot,
                    pid=os.getpid(),
                    target=to,
                    resume_command=resume,
                    interrupted=interrupted,
                )
            )

    async with target.open(queue) as manager, MigrationManager(manager) as migrations:
        first = await migrations.start_migration(queue, options)
        record(first)
        async with anyio.create_task_group() as tg:

            async def cancel_on_signal() -> None:
                nonlocal interrupted
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for signum in signals:
                        if interrupted:
                            out.note("still cancelling: waiting for the batch in hand to finish")
                            continue
                        interrupted = True
                        out.note(
                            f"{signal.Signals(signum).name}: cancelling; the batch in hand is finished first"
                        )
                        tg.start_soon(migrations.cancel_migration, queue)

            tg.start_soon(cancel_on_signal)
            with _reporter(out) as reporter:
                async for snapshot in migrations.progress(queue):
                    reporter.update(snapshot)
                    record(snapshot)
            tg.cancel_scope.cancel()
        final = migrations.get_migration_status(queue)
    record(final)
    _print_final(out, final, resume)
    if final.phase == MigrationPhase.COMPLETED:
        return 0
    if final.phase == MigrationPhase.CANCELLED:
        return EXIT_INTERRUPTED
    return 1


def _print_final(out: Out, final: MigrationStatus, resume: str) -> None:
    if out.json:
        out.data(final)
        return
    out.line(f"migration {final.migration_id} of {final.queue}: {describe(final)}")
    if final.last_error:
        out.line(f"error ({final.failed_phase}): {final.last_error}")
    if final.verified is not None:
        out.line(f"verified: {'yes' if final.verified else 'NO'}; checksum {final.checksum or '-'}")
    if final.phase in (MigrationPhase.CANCELLED, MigrationPhase.FAILED):
        out.line(f"resumable: run {resume}")


def _view(record: _statefile.RunRecord) -> dict[str, Any]:
    """What ``status`` reports from the status file: the snapshot plus whether its process runs."""
    st = record.status
    alive = _statefile.pid_alive(record.pid) and _is_queuestore(record.pid)
    if st.done:
        state = st.phase.value
    elif alive:
        state = "running"
    else:
        state = "interrupted"  # the process ended without recording a final phase (killed)
    return _shape(st, state, record.resume_command, record.pid, "file")


def _shape(st: MigrationStatus, state: str, resume: str, pid: int | None, source: str) -> dict[str, Any]:
    resumable = state in ("cancelled", "failed", "interrupted")
    return {
        "queue": st.queue,
        "state": state,
        "resumable": resumable,
        "resume_command": resume if resumable else None,
        "pid": pid if state == "running" else None,
        "owner": st.owner,
        "read_from": source,
        "status": st,
    }


def _stored_view(st: MigrationStatus) -> dict[str, Any]:
    """What ``status`` reports from the migration record in the store."""
    owner = st.owner or ""
    pid = owner_pid(owner) if owner else None
    if st.done:
        state = st.phase.value
    elif owner and (st.owner_lease_left or 0) > 0 and not owner_dead_here(owner):
        state = "running"
    else:
        state = "interrupted"  # its owner stopped renewing the record without a final phase
    local = _statefile.load(st.queue)
    resume = local.resume_command if local is not None else _resume_command(st.queue, st.target_backend)
    return _shape(st, state, resume, pid, "store")


async def _read_stored(target: Target, queue: str) -> MigrationStatus | None:
    """The status in the migration record of ``queue``'s backend (None: no record, or the
    backend cannot keep one, or no config was given: the status file is read instead)."""
    try:
        target.config_path()
    except UsageError:
        return None
    async with target.open_each(queue) as (manager, failed):
        if queue in failed:
            raise failed[queue]
        backend = manager.get_backend(queue)
        return await read_status(backend) if isinstance(backend, MigrationSupport) else None


async def status(target: Target, out: Out, queue: str, *, watch: float | None) -> int:
    """Show the migration of ``queue``: as its record in the source's store holds it (any
    process, any machine), else as ``migrate run`` recorded it on this machine.

    Returns 0, or 1 when nothing is recorded for ``queue``. With ``watch``, repeats
    every ``watch`` seconds until the migration is no longer running.

    Raises:
        UsageError, ConfigurationError: no usable config.
        BackendError: the store failed.
        OSError: the status file cannot be read.
        msgspec.DecodeError: the status file is not a status record.
    """
    while True:
        stored = await _read_stored(target, queue)
        record = _statefile.load(queue) if stored is None else None
        if stored is None and record is None:
            out.error(f"no migration of {queue!r} in its store nor recorded in {_statefile.state_dir()}")
            return 1
        view = _stored_view(stored) if stored is not None else _view(record)  # type: ignore[arg-type]
        st: MigrationStatus = view["status"]
        if out.json:
            out.data(view)
        else:
            owner = f" (owner {st.owner})" if st.owner and view["state"] == "running" else ""
            out.line(f"{queue}: {view['state']}{owner} -- {describe(st)}")
            if st.home:
                out.line(f"new home: {st.home}")
            if view["resumable"]:
                out.line(f"resumable: run {view['resume_command']}")
        if watch is None or view["state"] != "running":
            return 0
        await anyio.sleep(watch)


async def cancel(target: Target, out: Out, queue: str, *, wait_seconds: float) -> int:
    """Ask the ``migrate run`` process of ``queue`` to cancel (SIGINT) and wait until it has stopped.

    Returns 0 once it recorded "cancelled" (or another final phase), 1 when no run is
    going on, 124 when it did not stop within ``wait_seconds`` seconds.

    Raises:
        OSError: the status file cannot be read.
    """
    record = _statefile.load(queue)
    if record is None or _view(record)["state"] != "running":
        state = "nothing recorded" if record is None else _view(record)["state"]
        out.error(f"no running migration of {queue!r} ({state})")
        return 1
    os.kill(record.pid, signal.SIGINT)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        await anyio.sleep(0.1)
        latest = _statefile.load(queue)
        if latest is not None and _view(latest)["state"] != "running":
            return await status(target, out, queue, watch=None)
    out.error(f"the migration of {queue!r} did not stop within {wait_seconds:g}s (pid {record.pid})")
    return 124


def _is_queuestore(pid: int) -> bool:
    """Guard against a reused pid: on Linux, the process must be running queuestore."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    if not cmdline.parent.exists():
        return True  # no /proc: trust the pid
    try:
        return b"queuestore" in cmdline.read_bytes()
    except OSError:
        return False

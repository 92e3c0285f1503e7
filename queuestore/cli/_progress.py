"""Progress of a migration: a rich progress bar on a terminal, plain lines elsewhere.

Both show the phase, jobs moved of known total, the copy rate and the ETA.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Protocol, Self

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from queuestore.migration import MigrationStatus

__all__ = ["PlainProgress", "Reporter", "RichProgress", "SilentProgress", "describe", "rate"]


def rate(status: MigrationStatus) -> float:
    """Jobs moved per second since the migration started."""
    elapsed = max(1e-6, status.updated_at - status.started_at)
    return status.migrated_jobs / elapsed


def describe(status: MigrationStatus) -> str:
    """One line: phase, jobs, percent, rate, ETA."""
    eta = "-" if status.eta_seconds is None else f"{status.eta_seconds:.0f}s"
    return (
        f"{status.phase.value:<11} {status.migrated_jobs}/{status.total_jobs} jobs "
        f"{status.progress:5.1f}% {rate(status):.1f} jobs/s eta {eta}"
    )


class Reporter(Protocol):
    """Shows status snapshots as they come."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def update(self, status: MigrationStatus) -> None: ...


class SilentProgress:
    """Shows nothing (``--json``: the final status is the output)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def update(self, status: MigrationStatus) -> None:
        """Ignore ``status``."""


class PlainProgress:
    """One line per phase change, and at most one per ``interval`` seconds in between.

    Args:
        console: where to write.
        interval: least seconds between two lines of the same phase.
    """

    def __init__(self, console: Console, interval: float = 1.0) -> None:
        self._console = console
        self._interval = interval
        self._phase: str | None = None
        self._last = 0.0
        self._shown: tuple[int, int] | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def update(self, status: MigrationStatus) -> None:
        """Print ``status`` if the phase changed or ``interval`` passed with new figures."""
        now = time.monotonic()
        figures = (status.migrated_jobs, status.total_jobs)
        changed = status.phase.value != self._phase
        if changed or (figures != self._shown and (now - self._last >= self._interval or status.done)):
            self._console.print(f"progress: {describe(status)}", markup=False, highlight=False)
            self._phase, self._last, self._shown = status.phase.value, now, figures


class RichProgress:
    """A rich progress bar: phase, bar, jobs M/N, rate, ETA from the migration's own estimate."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("{task.fields[phase]:<11}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.1f} jobs/s"),
            TextColumn("eta {task.fields[eta]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task("migrate", total=None, phase="validation", rate=0.0, eta="-")

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def update(self, status: MigrationStatus) -> None:
        """Move the bar to ``status``."""
        eta = "-" if status.eta_seconds is None else f"{status.eta_seconds:.0f}s"
        self._progress.update(
            self._task,
            total=max(status.total_jobs, status.migrated_jobs) or None,
            completed=status.migrated_jobs,
            phase=status.phase.value,
            rate=rate(status),
            eta=eta,
        )

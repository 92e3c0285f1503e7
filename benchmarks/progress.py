"""The progress display: ``rich`` when it is installed and wanted, else one line per scenario.

Scenarios only bump a plain int (:class:`~benchmarks.workload.Counter`); a ticker task copies
it into the display four times a second, so a running scenario pays no per-job display cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

from benchmarks.workload import Counter

__all__ = ["PlainProgress", "RichProgress", "make_progress"]

_RICH_MISSING = (
    "the progress display needs `rich`: pip install 'queuestore[bench]' (or `pip install rich`), "
    "or pass --no-progress"
)


class PlainProgress:
    """No live display: a line on stderr when each scenario ends (CI, tests, pipes)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def log(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    @contextlib.asynccontextmanager
    async def task(self, label: str, total: int) -> AsyncIterator[Counter]:
        ctr = Counter(total)
        yield ctr


class RichProgress:
    """A rich Progress with one bar per scenario (the finished ones stay on screen)."""

    def __init__(self) -> None:
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise SystemExit(f"benchmarks: {_RICH_MISSING} ({exc})") from None
        self.console = Console(stderr=True)
        self._progress: Any = Progress(
            TextColumn("{task.description:<44}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>12}"),
            TimeElapsedColumn(),
            console=self.console,
            auto_refresh=False,
            transient=False,
        )

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def log(self, message: str) -> None:
        self._progress.console.print(message, markup=False, highlight=False)
        self._progress.refresh()

    @contextlib.asynccontextmanager
    async def task(self, label: str, total: int) -> AsyncIterator[Counter]:
        ctr = Counter(total)
        p = self._progress
        tid = p.add_task(label, total=total, rate="")
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def tick() -> None:
            while True:
                await asyncio.sleep(0.25)
                elapsed = max(1e-9, loop.time() - start)
                p.update(tid, completed=ctr.done, rate=f"{ctr.done / elapsed:,.0f}/s")
                p.refresh()

        ticker = asyncio.create_task(tick())
        try:
            yield ctr
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            p.update(tid, completed=ctr.done, rate="")
            p.refresh()


def make_progress(enabled: bool) -> PlainProgress | RichProgress:
    """The rich display when ``enabled`` (exits with an actionable message if rich is missing)."""
    return RichProgress() if enabled else PlainProgress()

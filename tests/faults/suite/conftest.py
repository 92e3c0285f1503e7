"""The standing fault suite (``nox -s faults``): its ``faults`` tests run with ``-m faults`` and
are left out otherwise (reported as deselected). The JSON summary goes to
``$QUEUESTORE_FAULTS_SUMMARY`` (default: ``fault-summary.json`` in the system temp dir); its path
is printed at the end."""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

SUMMARY_ENV = "QUEUESTORE_FAULTS_SUMMARY"
_rows: list[dict[str, Any]] = []
_written: list[Path] = []


def add_row(row: dict[str, Any]) -> None:
    """Add one backend x scenario entry to the summary."""
    _rows.append(row)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "faults" in (config.option.markexpr or ""):
        return
    mine = [i for i in items if i.get_closest_marker("faults") is not None]
    if mine:
        config.hook.pytest_deselected(items=mine)
        items[:] = [i for i in items if i not in mine]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _rows:
        return
    path = Path(os.environ.get(SUMMARY_ENV) or Path(tempfile.gettempdir()) / "fault-summary.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(),
        "results": sorted(_rows, key=lambda r: (r["backend"], r["scenario"])),
    }
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    _written.append(path)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for path in _written:
        terminalreporter.write_line(f"fault suite summary: {path}")

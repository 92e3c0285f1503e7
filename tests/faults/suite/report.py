"""The fault suite's JSON summary as a Markdown table:
``python -m tests.faults.suite.report fault-summary.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

COLUMNS = (
    "backend",
    "scenario",
    "jobs",
    "lost",
    "duplicated",
    "wrong_outcomes",
    "faults_injected",
    "seconds",
)


def table(summary: dict[str, Any]) -> str:
    """One row per backend and scenario; a not-covered entry shows its reason."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in summary["results"]:
        if row["status"] == "covered":
            cells = [str(row[c]) for c in COLUMNS]
        else:
            cells = [row["backend"], row["scenario"], row["status"], *[""] * (len(COLUMNS) - 3)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))

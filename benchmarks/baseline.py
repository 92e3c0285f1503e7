"""A run set beside a saved one: ``python -m benchmarks --baseline PATH``.

The saved run is the JSON another run wrote (``--out``). For each backend and scenario both
runs measured, the table puts the saved run's figures beside this run's: jobs/s and the ratio
to the ceiling of the same run, and the client and server CPU per job. Ratios and rates move
with the machine's load and with the ceiling each run measured; the CPU per job moves much
less, so it is the column to compare across runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["compare_markdown", "load_run"]


def load_run(path: Path) -> list[dict[str, Any]]:
    """The entries of a saved run.

    Raises:
        ValueError: the file is not a run's JSON (a list of entries, the first one ``meta``).
        OSError: the file cannot be read.
    """
    data = json.loads(path.read_text(encoding="utf-8"))
    first = data[0] if isinstance(data, list) and data else None
    if not isinstance(first, dict) or first.get("kind") != "meta":
        raise ValueError(f"{path}: not the JSON of a benchmark run (a list of entries, the first one 'meta')")
    return [e for e in data if isinstance(e, dict)]


def _n(x: Any, spec: str = ",.0f") -> str:
    return "—" if x is None else format(x, spec)


def _pair(before: Any, now: Any, spec: str) -> str:
    return f"{_n(before, spec)} → {_n(now, spec)}"


def compare_markdown(now: list[dict[str, Any]], before: list[dict[str, Any]], label: str) -> str:
    """The table of this run's throughput beside the saved run's (empty when they share no
    backend and scenario)."""
    saved = {(e["backend"], e["scenario"]): e for e in before if e.get("kind") == "throughput"}
    rows: list[str] = []
    for e in now:
        if e.get("kind") != "throughput" or (e["backend"], e["scenario"]) not in saved:
            continue
        b = saved[(e["backend"], e["scenario"])]
        rows.append(
            "| "
            + " | ".join(
                [
                    e["backend"],
                    e["scenario"],
                    _pair(b.get("jobs_per_s"), e.get("jobs_per_s"), ",.0f"),
                    _pair(b.get("ratio"), e.get("ratio"), ".2f"),
                    "—" if e.get("target") is None else f"≥ {e['target']:.2f}",
                    _pair(b.get("client_cpu_us_per_job"), e.get("client_cpu_us_per_job"), ".1f"),
                    _pair(b.get("server_cpu_us_per_job"), e.get("server_cpu_us_per_job"), ".1f"),
                ]
            )
            + " |"
        )
    if not rows:
        return ""
    meta = before[0]
    head = [
        f"### Against the saved run {label} ({meta.get('date')}, load avg before {meta.get('load_before')}, "
        f"pool {meta.get('pool') or 'defaults'})",
        "",
        "Each cell is saved run → this run. Ratios are to each run's own ceiling; CPU per job is the "
        "figure that compares across runs.",
        "",
        "| backend | scenario | jobs/s | ratio | target | client µs/job | server µs/job |",
        "|---|---|---|---|---|---|---|",
    ]
    return "\n".join(head + rows) + "\n"

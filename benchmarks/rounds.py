"""Rounds: the throughput scenarios run again, each round with its own ceilings, and the median
round kept.

On a machine whose speed moves within minutes, one run's ratio can be off by half either way:
the ceilings run first and the backends after them, minutes apart. With ``--rounds N`` every
round measures the ceilings and then the backends again, so each round's ratio compares runs
close in time, and the figure kept for each backend and scenario is the round with the median
ratio (the median jobs/s where there is no ceiling), its own ceiling beside it. The other
rounds' figures stay in the entry (``rounds_ratio``, ``rounds_jobs_per_s``) and in a table of
their own. Memory, linear and scale run in the first round only.
"""

from __future__ import annotations

from typing import Any

__all__ = ["merge_rounds", "rounds_markdown"]

_MERGED = ("throughput", "ceiling")


def _key(e: dict[str, Any]) -> tuple[str, str, str]:
    return e.get("kind", ""), e.get("backend", ""), e.get("scenario", "")


def _median_entry(same: list[dict[str, Any]]) -> dict[str, Any]:
    """The entry of the median round: a backend's by ratio when every round has one, a
    ceiling's (and one without a ceiling) by jobs/s; an even count takes the lower middle (the
    figure is one round's, never an average)."""
    by_ratio = same[0].get("kind") != "ceiling" and all(e.get("ratio") is not None for e in same)
    field = "ratio" if by_ratio else "jobs_per_s"
    ranked = sorted(same, key=lambda e: e.get(field) or 0.0)
    chosen = dict(ranked[(len(ranked) - 1) // 2])
    chosen["rounds_ratio"] = [e.get("ratio") for e in same]
    chosen["rounds_jobs_per_s"] = [e.get("jobs_per_s") for e in same]
    return chosen


def merge_rounds(rounds: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The first round's entries, each throughput and ceiling entry replaced by its median
    round's (in the first round's order); a figure missing from a later round (an error there)
    is kept from the rounds that have it, and that round's error entry is kept too."""
    if len(rounds) <= 1:
        return list(rounds[0]) if rounds else []
    found: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for entries in rounds:
        for e in entries:
            if e.get("kind") in _MERGED:
                found.setdefault(_key(e), []).append(e)
    out: list[dict[str, Any]] = []
    for e in rounds[0]:
        out.append(_median_entry(found[_key(e)]) if e.get("kind") in _MERGED else e)
    out += [e for entries in rounds[1:] for e in entries if e.get("kind") == "error"]
    return out


def rounds_markdown(entries: list[dict[str, Any]]) -> str:
    """A table of every round's ratio (jobs/s where there is no ceiling) per backend and
    scenario; empty after a single round."""
    rows = [e for e in entries if e.get("kind") == "throughput" and len(e.get("rounds_ratio") or []) > 1]
    if not rows:
        return ""
    lines = [
        "### Rounds (each round: its ceilings, then the backends; the median round is the one above)",
        "",
        "| backend | scenario | ratio per round | jobs/s per round |",
        "|---|---|---|---|",
    ]
    for e in rows:
        ratios = ", ".join("—" if r is None else f"{r:.2f}" for r in e["rounds_ratio"])
        rates = ", ".join("—" if r is None else f"{r:,.0f}" for r in e["rounds_jobs_per_s"])
        lines.append(f"| {e['backend']} | {e['scenario']} | {ratios} | {rates} |")
    return "\n".join(lines) + "\n"

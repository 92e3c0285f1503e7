"""``--rounds``: the throughput scenarios run again with their own ceilings, and each figure is
its median round's; the streams drain is compared with a raw drain that frees what it acked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.cli import main
from benchmarks.rounds import merge_rounds, rounds_markdown


def _row(kind: str, backend: str, scenario: str, jobs_per_s: float, ratio: float | None) -> dict[str, Any]:
    return {"kind": kind, "backend": backend, "scenario": scenario, "jobs_per_s": jobs_per_s, "ratio": ratio}


def test_each_figure_is_its_median_round_and_keeps_the_others() -> None:
    meta = {"kind": "meta"}
    mem = {"kind": "memory", "backend": "b", "scenario": "memory"}
    rounds = [
        [meta, _row("ceiling", "raw", "c", 100, 1.0), _row("throughput", "b", "s", 50, 0.5), mem],
        [meta, _row("ceiling", "raw", "c", 120, 1.0), _row("throughput", "b", "s", 90, 0.75)],
        [
            meta,
            _row("ceiling", "raw", "c", 80, 1.0),
            _row("throughput", "b", "s", 56, 0.7),
            {"kind": "error", "backend": "b", "scenario": "t", "error": "boom"},
        ],
    ]
    merged = merge_rounds(rounds)
    assert [e["kind"] for e in merged] == ["meta", "ceiling", "throughput", "memory", "error"]
    ceiling, row = merged[1], merged[2]
    assert ceiling["jobs_per_s"] == 100  # every ceiling's ratio is 1: the median jobs/s
    assert ceiling["rounds_jobs_per_s"] == [100, 120, 80]
    # the median ratio (0.7, of round 3)
    assert row["ratio"] == 0.7
    assert row["jobs_per_s"] == 56
    assert row["rounds_ratio"] == [0.5, 0.75, 0.7]
    assert row["rounds_jobs_per_s"] == [50, 90, 56]
    md = rounds_markdown(merged)
    assert "| b | s | 0.50, 0.75, 0.70 | 50, 90, 56 |" in md
    assert rounds_markdown(merge_rounds([rounds[0]])) == ""


def test_without_a_ratio_the_median_jobs_per_s_is_kept() -> None:
    rounds = [[_row("throughput", "memory", "s", x, None)] for x in (30, 10, 20, 40)]
    (row,) = merge_rounds(rounds)
    assert row["jobs_per_s"] == 20  # an even count: the lower middle, one round's own figure
    assert row["rounds_jobs_per_s"] == [30, 10, 20, 40]


@pytest.mark.parametrize("bad", ["0", "-1"])
def test_rounds_below_one_are_refused(bad: str) -> None:
    with pytest.raises(SystemExit):
        main(["--rounds", bad, "--backends", "memory"])


def test_rounds_rerun_the_throughput_scenarios_against_their_own_ceilings(
    redis_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "latest.json"
    argv = ["--jobs", "300", "--no-progress", "--url", redis_server.url, "--backends", "redis-streams",
            "--scenarios", "dequeue_many,memory", "--memory-jobs", "300", "--rounds", "2",
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    entries = json.loads(out.read_text())
    assert entries[0]["rounds"] == 2
    ceilings = {e["scenario"]: e for e in entries if e["kind"] == "ceiling"}
    assert set(ceilings) == {"xreadgroup_100_xackdel", "xreadgroup_100_xack", "xreadgroup_100_xacktrim"}
    assert all(len(e["rounds_jobs_per_s"]) == 2 for e in ceilings.values())
    rows = {e["scenario"]: e for e in entries if e["kind"] == "throughput"}
    drain = rows["dequeue_many"]
    assert drain["ceiling"] == "xreadgroup_100_xackdel"
    assert drain["target"] == 0.6
    assert len(drain["rounds_ratio"]) == 2
    assert drain["ratio"] in drain["rounds_ratio"]
    reference = rows["dequeue_many (vs xreadgroup_100_xack)"]
    assert reference["ceiling"] == "xreadgroup_100_xack"
    assert reference["target"] is None
    assert [e["kind"] for e in entries].count("memory") == 1  # memory runs in the first round only
    assert "### Rounds" in capsys.readouterr().out
    client = redis_server.sync_client()
    assert not list(client.scan_iter(match=f"{entries[0]['key_prefix']}*", count=1000))

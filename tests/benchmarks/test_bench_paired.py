"""``python -m benchmarks.paired``: a backend and its ceiling in alternating blocks, each pair's
ratio kept, and the median and pooled ratios computed from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.paired import main, pair_summary


def test_the_summary_is_the_median_of_the_pairs_and_the_pooled_ratio() -> None:
    ours, raw = [50.0, 100.0, 30.0], [100.0, 100.0, 100.0]
    out = pair_summary(ours, raw, jobs=10)
    assert out["ratios"] == [0.5, 1.0, 0.3]
    assert out["median_ratio"] == 0.5
    assert out["q1"] <= out["median_ratio"] <= out["q3"]
    # pooled: 30 jobs in 10/50 + 10/100 + 10/30 s against 30 jobs in 0.3 s
    assert out["pooled_ratio"] == pytest.approx((30 / (0.2 + 0.1 + 1 / 3)) / 100)
    assert pair_summary([80.0], [100.0], jobs=5)["median_ratio"] == pytest.approx(0.8)


@pytest.mark.parametrize(
    "argv",
    [["--pairs", "0"], ["--jobs", "0"], ["--scenarios", "end_to_end"], ["--backends", "memory"]],
)
def test_what_cannot_be_paired_is_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        main(argv)


def test_pairs_run_on_a_server_and_leave_nothing_behind(redis_server: Any, tmp_path: Path) -> None:
    out = tmp_path / "paired.json"
    scenarios = "enqueue_1,enqueue_many,dequeue_many"
    argv = ["--url", redis_server.url, "--backends", "redis-lists,redis-streams", "--scenarios", scenarios,
            "--pairs", "2", "--jobs", "200", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    rows = json.loads(out.read_text())
    assert [(r["backend"], r["scenario"], r["ceiling"]) for r in rows] == [
        ("redis-lists", "enqueue_1", "evalsha_enqueue_1"),
        ("redis-streams", "enqueue_1", "evalsha_enqueue_1"),
        ("redis-lists", "enqueue_many", "evalsha_pipeline_100"),
        ("redis-streams", "enqueue_many", "evalsha_pipeline_100"),
        ("redis-lists", "dequeue_many", "evalsha_batch_100"),
        ("redis-streams", "dequeue_many", "xreadgroup_100_xackdel"),
    ]
    for r in rows:
        assert (r["pairs"], len(r["ratios"]), r["jobs"]) == (2, 2, 200)
        assert r["target"] == {"enqueue_1": 0.8, "enqueue_many": 1.2, "dequeue_many": 0.6}[r["scenario"]]
        assert all(x > 0 for x in r["jobs_per_s"] + r["ceiling_jobs_per_s"])
        assert min(r["ratios"]) <= r["median_ratio"] <= max(r["ratios"])
    client = redis_server.sync_client()
    assert not list(client.scan_iter(match="qsbench-*", count=1000))

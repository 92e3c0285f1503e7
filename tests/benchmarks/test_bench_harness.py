"""Smoke tests of the benchmark harness (benchmarks/): it runs end to end on a few hundred jobs,
writes well-formed results, compares with the ceiling, skips what is missing, and never leaves a
server behind. These check the harness, not speed: no figure is asserted."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from benchmarks.cli import main, parse_args
from benchmarks.server import bench_server

ROOT = Path(__file__).resolve().parents[2]
THROUGHPUT_KEYS = {
    "backend",
    "scenario",
    "jobs",
    "jobs_per_s",
    "ceiling_jobs_per_s",
    "ratio",
    "target",
    "pass",
}
SMALL = [
    "--jobs", "200", "--no-progress", "--linear-sizes", "100,200", "--memory-jobs", "400",
    "--scale-sizes", "100,400",
]  # fmt: skip


def _load(path: Path) -> list[dict[str, Any]]:
    entries = json.loads(path.read_text())
    assert isinstance(entries, list)
    assert entries[0]["kind"] == "meta"
    return entries


def _kind(entries: list[dict[str, Any]], kind: str, backend: str | None = None) -> list[dict[str, Any]]:
    return [e for e in entries if e.get("kind") == kind and (backend is None or e["backend"] == backend)]


def test_memory_backend_run_writes_every_kind_of_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "latest.json"
    assert main([*SMALL, "--backends", "memory", "--out", str(out)]) == 0
    entries = _load(out)
    assert not _kind(entries, "error")
    scenarios = {e["scenario"] for e in _kind(entries, "throughput", "memory")}
    assert scenarios == {
        "enqueue_1",
        "enqueue_32",
        "enqueue_many",
        "dequeue_ack_1",
        "dequeue_ack_32",
        "dequeue_many",
        "end_to_end",
    }
    for e in _kind(entries, "throughput"):
        assert e.keys() >= THROUGHPUT_KEYS
        assert e["jobs"] == 200
        assert e["jobs_per_s"] > 0
        assert e["ceiling_jobs_per_s"] is None
        assert e["pass"] is None
    assert {e["op"] for e in _kind(entries, "latency", "memory")} == {
        "enqueue",
        "dequeue",
        "ack",
        "dequeue_ack",
    }
    (mem,) = _kind(entries, "memory", "memory")
    assert mem["jobs"] == 400
    assert mem["bytes_per_queued_job"] > 0
    (lin,) = _kind(entries, "linear", "memory")
    assert lin["sizes"] == [100, 200]
    assert len(lin["jobs_per_s"]) == 2
    table = capsys.readouterr().out
    assert "| memory | enqueue_many | 200 |" in table
    assert "### Linear cost" in table


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


@pytest.mark.parametrize(
    ("backend", "module"),
    [
        ("redis-lists", "queuestore.backends.redis_lists"),
        ("redis-streams", "queuestore.backends.redis_streams"),
        ("keydb", "queuestore.backends.keydb"),
        ("redis-lists+coalesce", "queuestore.backends.redis_lists"),
        ("redis-lists+nocoalesce", "queuestore.backends.redis_lists"),
    ],
)
def test_redis_backend_against_the_ceiling(
    redis_server: Any, tmp_path: Path, backend: str, module: str
) -> None:
    if not _importable(module):
        pytest.skip(f"{module} does not exist yet")
    out = tmp_path / "latest.json"
    rc = main([*SMALL, "--url", redis_server.url, "--backends", backend, "--out", str(out)])
    entries = _load(out)
    errors = _kind(entries, "error")
    assert not errors, errors
    assert rc == 0
    assert entries[0]["server"].startswith("Redis")
    ceilings = {e["scenario"]: e for e in _kind(entries, "ceiling")}
    assert {"evalsha_enqueue_1", "evalsha_dequeue_ack_32"} <= ceilings.keys()
    assert all(e["jobs_per_s"] > 0 for e in ceilings.values())
    rows = {e["scenario"]: e for e in _kind(entries, "throughput", backend)}
    # every scenario with a target got a ratio and a verdict
    for scenario, target in report.TARGETS.items():
        row = rows[scenario]
        assert row["ceiling_jobs_per_s"] > 0
        assert row["ratio"] > 0
        assert row["target"] == target
        assert isinstance(row["pass"], bool)
    assert rows["dequeue_ack_32 (stretch)"]["target"] == report.STRETCH_TARGET
    if backend == "redis-streams":  # the drains beside the same-work ceiling, with no target
        for ref in report.REFERENCE_CEILING_OF[("streams", "dequeue_many")]:
            assert ceilings[ref]["jobs_per_s"] > 0
            assert rows[f"dequeue_many (vs {ref})"]["target"] is None
    if backend == "keydb":  # a dialect on a Redis server: the same scripts as redis-lists
        assert {e["scenario"] for e in _kind(entries, "skip", backend)} == {"memory", "linear", "scale"}
    else:
        (mem,) = _kind(entries, "memory", backend)
        assert mem["source"].startswith("redis INFO used_memory")
        assert mem["jobs"] == 400  # a few hundred jobs are too few for a meaningful figure
    # nothing of the run is left on the shared server
    client = redis_server.sync_client()
    assert not list(client.scan_iter(match=f"{entries[0]['key_prefix']}*", count=1000))


def test_missing_or_unknown_backend_is_skipped_with_its_reason(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    assert (
        main([*SMALL, "--backends", "memory,no-such-backend", "--scenarios", "enqueue_1", "--out", str(out)])
        == 0
    )
    entries = _load(out)
    (skip,) = _kind(entries, "skip")
    assert skip["backend"] == "no-such-backend"
    assert "no-such-backend" in skip["reason"]
    assert [e["scenario"] for e in _kind(entries, "throughput")] == ["enqueue_1"]


def test_throwaway_server_is_stopped_and_removed() -> None:
    server = bench_server().start()
    pid, data_dir = server.pid, server.dir
    assert server.running
    assert pid is not None
    assert data_dir.exists()
    client = server.sync_client(decode_responses=True)
    assert client.ping()
    assert client.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"] == "-1"
    assert client.config_get("appendonly")["appendonly"] == "no"
    server.cleanup()
    server.cleanup()  # idempotent
    assert not server.running
    assert not data_dir.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_entry_point_starts_and_stops_its_own_server(tmp_path: Path) -> None:
    """``python -m benchmarks`` with no --url starts a throwaway server and stops it again."""
    out = tmp_path / "latest.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--jobs", "50", "--no-progress",
         "--backends", "memory,redis-lists", "--scenarios", "enqueue_1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "| memory | enqueue_1 | 50 |" in proc.stdout
    entries = _load(out)
    if _importable("queuestore.backends.redis_lists"):
        assert "throwaway redis-server" in proc.stderr
        pid = int(proc.stderr.split("(pid ", 1)[1].split(")", 1)[0])
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert entries[0]["server"].startswith("Redis")


def test_defaults_scale_with_jobs() -> None:
    args = parse_args(["--jobs", "50000"])
    assert args.linear_sizes == [10_000, 50_000, 200_000]
    assert args.memory_jobs == 100_000
    assert args.pool is None  # library and redis-py defaults unless capped
    assert parse_args(["--jobs", "200"]).memory_jobs == 400
    with pytest.raises(SystemExit):
        parse_args(["--scenarios", "nope"])


def test_markdown_marks_pass_and_short() -> None:
    entries = [
        {"kind": "throughput", "backend": "b", "scenario": "enqueue_1", "jobs": 10, "jobs_per_s": 90.0,
         "ceiling": "c", "ceiling_jobs_per_s": 100.0, "ratio": 0.9, "target": 0.8, "pass": True,
         "client_cpu_us_per_job": 1.0, "server_cpu_us_per_job": None, "notes": []},
        {"kind": "throughput", "backend": "b", "scenario": "dequeue_many", "jobs": 10, "jobs_per_s": 50.0,
         "ceiling": "c", "ceiling_jobs_per_s": 100.0, "ratio": 0.5, "target": 0.6, "pass": False,
         "client_cpu_us_per_job": 1.0, "server_cpu_us_per_job": 2.0, "notes": ["x"]},
    ]  # fmt: skip
    md = report.markdown(entries)
    assert "| b | enqueue_1 | 10 | 90 | c | 100 | 0.90 | ≥ 0.80 | **pass** |" in md
    assert "| b | dequeue_many | 10 | 50 | c | 100 | 0.50 | ≥ 0.60 | **short** |" in md


def test_a_saved_run_is_printed_beside_this_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    small = ["--jobs", "60", "--no-progress", "--backends", "memory", "--scenarios", "enqueue_1,enqueue_many"]
    assert main([*small, "--out", str(first)]) == 0
    capsys.readouterr()
    assert main([*small, "--out", str(second), "--baseline", str(first)]) == 0
    out = capsys.readouterr().out
    assert "### Against the saved run first.json" in out
    saved = {e["scenario"]: e for e in _load(first) if e.get("kind") == "throughput"}
    now = {e["scenario"]: e for e in _load(second) if e.get("kind") == "throughput"}
    assert set(saved) == set(now) == {"enqueue_1", "enqueue_many"}
    for scenario, e in now.items():
        b = saved[scenario]
        cell = f"{b['client_cpu_us_per_job']:.1f} → {e['client_cpu_us_per_job']:.1f}"
        assert f"| memory | {scenario} |" in out
        assert cell in out


def test_a_baseline_that_is_not_a_run_fails_before_running(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "meta"}', encoding="utf-8")
    assert main(["--no-progress", "--backends", "memory", "--baseline", str(bad)]) == 2
    assert main(["--no-progress", "--backends", "memory", "--baseline", str(tmp_path / "absent.json")]) == 2

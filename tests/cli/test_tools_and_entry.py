"""``demo`` and ``bench`` against a real redis-server, and the entry points with and without the
``cli`` extra (``python -m queuestore demo`` must keep working without it)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("click", reason="needs the 'cli' extra (pip install -e '.[cli]')")
pytest.importorskip("rich", reason="needs the 'cli' extra (pip install -e '.[cli]')")

import queuestore.__main__ as entry
import queuestore.cli
from tests.servers import RedisServer

from .helpers import as_json, child_env, invoke, subprocess_cli


def test_demo_on_url(redis_server: RedisServer) -> None:
    result = invoke(["demo", "--jobs", "4", "--workers", "2", "--url", redis_server.url])
    assert result.exit_code == 0, result.output
    assert "demo finished: every job acked once, the poison job dead-lettered." in result.stdout
    doc = as_json(invoke(["demo", "--jobs", "3", "--url", redis_server.url, "--json"]))
    assert (doc["total_acked"], doc["dead"]) == (3, 1)


def test_bench_on_a_fresh_queue(config_file: Path, queue: str) -> None:
    no_choice = invoke(["bench", "--config", str(config_file)])  # two backends, no default
    assert no_choice.exit_code == 2
    assert "--backend NAME" in no_choice.stderr
    args = [
        "bench",
        "--jobs",
        "300",
        "--batch",
        "50",
        "--queue",
        queue,
        "--config",
        str(config_file),
        "--json",
    ]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    doc = as_json(result)
    assert doc["queue"].startswith("bench-")
    assert doc["queue"] != queue
    assert (doc["backend"], doc["type"], doc["batch"], doc["left"]) == ("src", "redis-lists", 50, 0)
    assert [p["phase"] for p in doc["phases"]] == ["enqueue", "dequeue+ack"]
    assert all(p["jobs"] == 300 and p["jobs_per_s"] > 0 for p in doc["phases"])
    one_by_one = invoke(
        ["bench", "--jobs", "20", "--batch", "1", "--backend", "dst", "--config", str(config_file)]
    )
    assert one_by_one.exit_code == 0, one_by_one.output
    assert "dequeue+ack" in one_by_one.stdout
    unknown = invoke(["bench", "--backend", "nope", "--config", str(config_file)])
    assert unknown.exit_code == 1
    assert "BACKEND_NOT_FOUND" in unknown.stderr


def test_python_m_queuestore_routes_to_the_cli(tmp_path: Path, redis_server: RedisServer) -> None:
    env = child_env(tmp_path / "state")
    result = subprocess_cli(["health", "q1", "--url", redis_server.url, "--json"], env)
    assert result.returncode == 0, result.stderr
    assert '"healthy":true' in result.stdout
    old = subprocess_cli(["inspect"], env)  # an unknown command is a usage error naming the commands
    assert old.returncode == 2
    assert "No such command 'inspect'" in old.stderr


def test_without_the_cli_extra(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(entry, "cli_installed", lambda: False)
    assert entry.main(["health"]) == 2
    assert "pip install 'queuestore[cli]'" in capsys.readouterr().err
    monkeypatch.setenv("QUEUESTORE_URL", "")  # demo: a throwaway local server or memory, no extra needed
    assert entry.main(["demo", "--jobs", "2", "--workers", "1"]) == 0
    assert "demo finished" in capsys.readouterr().out

    # the console script's main, when click cannot be imported
    for name in [m for m in sys.modules if m == "click" or m.startswith(("click.", "queuestore.cli._"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "click", None)
    assert queuestore.cli.main(["stats"]) == 2
    assert "pip install 'queuestore[cli]'" in capsys.readouterr().err


def test_stats_watch_ends_on_ctrl_c(tmp_path: Path, redis_server: RedisServer) -> None:
    env = child_env(tmp_path / "state")
    args = ["stats", "wq", "--url", redis_server.url, "--json", "--watch", "--interval", "0.1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "queuestore", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # a round was printed: it is watching
    assert '"wq"' in first
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert "Traceback" not in err

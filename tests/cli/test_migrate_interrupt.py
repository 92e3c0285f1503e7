"""``migrate run`` in another OS process, stopped by a real SIGINT (Ctrl-C), by ``migrate cancel``
from a third process, and by SIGKILL; ``migrate status`` from yet another process shows what
happened, and running ``migrate run`` again finishes the move. Checked job by job: every job is
stored exactly once, in the source or the target, at every stop."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("click", reason="needs the 'cli' extra (pip install -e '.[cli]')")
pytest.importorskip("rich", reason="needs the 'cli' extra (pip install -e '.[cli]')")

from queuestore.cli import _statefile

from .helpers import ROOT, backend_config, child_env, fill, stored_ids, subprocess_cli

_CLI = (sys.executable, "-m", "queuestore")
JOBS = 4000  # with --batch-size 1 the copy takes seconds: long enough to stop it midway


def _start_run(config_file: Path, queue: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*_CLI, "migrate", "run", queue, "--to", "dst", "--batch-size", "1", "--config", str(config_file)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_copying(queue: str, proc: subprocess.Popen[str], at_least: int = 20) -> int:
    """Wait until the run's status file shows it copying with ``at_least`` jobs moved."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"migrate run ended early: {proc.communicate()}"
        record = _statefile.load(queue)
        if (
            record is not None
            and record.status.phase == "copying"
            and record.status.migrated_jobs >= at_least
        ):
            assert record.pid == proc.pid
            return record.status.migrated_jobs
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"the run did not reach the copy phase: {proc.communicate()}")


def _exactly_once(config_file: Path, queue: str, ids: list[str]) -> tuple[int, int]:
    """Every id stored once in the source or the target; returns (on source, on target)."""
    on_src = stored_ids(backend_config(config_file, "src", queue))
    on_dst = stored_ids(backend_config(config_file, "dst", queue))
    counts = collections.Counter(on_src + on_dst)
    assert set(counts) == set(ids), "lost or unexpected jobs"
    assert [i for i, n in counts.items() if n > 1] == [], "duplicated jobs"
    return len(on_src), len(on_dst)


def _status(queue: str, env: dict[str, str]) -> dict[str, object]:
    result = subprocess_cli(["migrate", "status", queue, "--json"], env)
    assert result.returncode == 0, result.stderr
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def _resume_and_check(config_file: Path, queue: str, ids: list[str], env: dict[str, str]) -> None:
    again = subprocess_cli(["migrate", "run", queue, "--to", "dst", "--config", str(config_file)], env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "progress: completed" in again.stdout
    assert _exactly_once(config_file, queue, ids) == (0, len(ids))
    assert _status(queue, env)["state"] == "completed"


def test_ctrl_c_cancels_cleanly_and_resumably(config_file: Path, queue: str, tmp_path: Path) -> None:
    ids = fill(backend_config(config_file, "src", queue), JOBS)
    env = child_env(tmp_path / "state")
    proc = _start_run(config_file, queue, env)
    _wait_copying(queue, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "SIGINT: cancelling" in err
    assert "progress: cancelled" in out
    assert "resumable: run queuestore migrate run" in out
    assert "Traceback" not in err

    doc = _status(queue, env)  # another process reads what the run recorded
    assert (doc["state"], doc["resumable"]) == ("cancelled", True)
    on_src, on_dst = _exactly_once(config_file, queue, ids)
    assert on_src > 0
    assert on_dst > 0
    _resume_and_check(config_file, queue, ids, env)


def test_migrate_cancel_from_another_process(config_file: Path, queue: str, tmp_path: Path) -> None:
    ids = fill(backend_config(config_file, "src", queue), JOBS)
    env = child_env(tmp_path / "state")
    proc = _start_run(config_file, queue, env)
    _wait_copying(queue, proc)
    running = _status(queue, env)
    assert (running["state"], running["pid"]) == ("running", proc.pid)
    cancel = subprocess_cli(["migrate", "cancel", queue], env)
    assert cancel.returncode == 0, cancel.stdout + cancel.stderr
    assert "cancelled" in cancel.stdout
    assert "resumable" in cancel.stdout
    assert proc.wait(timeout=60) == 130
    proc.communicate()
    _exactly_once(config_file, queue, ids)
    _resume_and_check(config_file, queue, ids, env)


def test_killed_run_shows_interrupted_and_resumes(config_file: Path, queue: str, tmp_path: Path) -> None:
    ids = fill(backend_config(config_file, "src", queue), JOBS)
    env = child_env(tmp_path / "state")
    proc = _start_run(config_file, queue, env)
    _wait_copying(queue, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    doc = _status(queue, env)
    assert (doc["state"], doc["resumable"]) == ("interrupted", True)
    assert doc["pid"] is None
    text = subprocess_cli(["migrate", "status", queue], env)
    assert "interrupted" in text.stdout
    cancel = subprocess_cli(["migrate", "cancel", queue], env)
    assert cancel.returncode == 1  # nothing runs any more
    # jobs held by the killed run are finished by the resumed one: nothing lost, nothing doubled
    _resume_and_check(config_file, queue, ids, env)


def test_status_reads_the_record_in_the_store_from_a_process_without_the_status_file(
    config_file: Path, queue: str, tmp_path: Path
) -> None:
    fill(backend_config(config_file, "src", queue), JOBS)
    env = child_env(tmp_path / "state")
    elsewhere = child_env(tmp_path / "other-state")  # no status file there: only the store can tell
    proc = _start_run(config_file, queue, env)
    _wait_copying(queue, proc, at_least=50)
    time.sleep(0.5)
    args = ["migrate", "status", queue, "--json", "--config", str(config_file)]
    first = json.loads(subprocess_cli(args, elsewhere).stdout)
    assert first["read_from"] == "store"
    assert (first["state"], first["pid"]) == ("running", proc.pid)
    assert f":{proc.pid}:" in first["owner"]
    assert first["status"]["phase"] == "copying"
    time.sleep(0.5)
    second = json.loads(subprocess_cli(args, elsewhere).stdout)
    assert second["status"]["progress"] >= first["status"]["progress"]
    assert second["status"]["migrated_jobs"] > first["status"]["migrated_jobs"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    proc.communicate()
    after = json.loads(subprocess_cli(args, elsewhere).stdout)
    assert (after["state"], after["owner"], after["resumable"]) == ("cancelled", None, True)
    assert after["status"]["migrated_jobs"] >= second["status"]["migrated_jobs"]
    text = subprocess_cli(["migrate", "status", queue, "--config", str(config_file)], elsewhere)
    assert "cancelled" in text.stdout

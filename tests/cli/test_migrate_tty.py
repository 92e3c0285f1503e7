"""``migrate run`` on a real terminal (a pseudo-terminal): the rich progress bar, and Ctrl-C typed
on the terminal (the tty driver turns ``^C`` into SIGINT for the foreground process group)."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("click", reason="needs the 'cli' extra (pip install -e '.[cli]')")
pytest.importorskip("rich", reason="needs the 'cli' extra (pip install -e '.[cli]')")

from queuestore.cli import _statefile

from .helpers import ROOT, backend_config, child_env, fill, stored_ids, subprocess_cli


def _spawn_on_pty(args: list[str], env: dict[str, str]) -> tuple[int, int]:
    """Start ``python -m queuestore ARGS`` with a pty as its controlling terminal; (pid, master fd)."""
    pid, master = pty.fork()
    if pid == 0:  # the child: a new session whose controlling terminal is the pty
        try:
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, "-m", "queuestore", *args], {**env, "COLUMNS": "120"})
        finally:
            os._exit(127)  # never return into the test process's copy
    return pid, master


def _read(master: int, until: float) -> bytes:
    out = b""
    while time.monotonic() < until:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        else:
            return out
    return out


def _wait(pid: int, master: int, seconds: float) -> tuple[int, bytes]:
    output = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        output += _read(master, deadline)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            output += _read(master, time.monotonic() + 1)
            os.close(master)
            return os.waitstatus_to_exitcode(status), output
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(master)
    raise AssertionError(f"migrate run did not end: {output[-2000:]!r}")


def test_progress_bar_on_a_terminal(config_file: Path, queue: str, tmp_path: Path) -> None:
    ids = fill(backend_config(config_file, "src", queue), 500)
    env = child_env(tmp_path / "state")
    pid, master = _spawn_on_pty(["migrate", "run", queue, "--to", "dst", "--config", str(config_file)], env)
    code, output = _wait(pid, master, 60)
    text = output.decode(errors="replace")
    assert code == 0, text
    assert "500/500" in text  # the bar's M/N column
    assert "jobs/s" in text
    assert "━" in text  # rich's bar
    assert "progress: " not in text  # the plain lines are for non-terminals
    assert sorted(stored_ids(backend_config(config_file, "dst", queue))) == sorted(ids)


def test_ctrl_c_typed_on_the_terminal(config_file: Path, queue: str, tmp_path: Path) -> None:
    ids = fill(backend_config(config_file, "src", queue), 4000)
    env = child_env(tmp_path / "state")
    args = ["migrate", "run", queue, "--to", "dst", "--batch-size", "1", "--config", str(config_file)]
    pid, master = _spawn_on_pty(args, env)
    output = b""
    deadline = time.monotonic() + 60
    while True:
        output += _read(master, time.monotonic() + 0.05)
        record = _statefile.load(queue)
        if record is not None and record.status.phase == "copying" and record.status.migrated_jobs >= 20:
            break
        assert time.monotonic() < deadline, output[-2000:]
    os.write(master, b"\x03")  # Ctrl-C
    code, rest = _wait(pid, master, 60)
    text = (output + rest).decode(errors="replace")
    assert code == 130, text
    assert "cancelling" in text
    assert "resumable: run queuestore migrate run" in text
    assert "Traceback" not in text
    status = subprocess_cli(["migrate", "status", queue, "--json"], env)
    doc = json.loads(status.stdout)
    assert (doc["state"], doc["resumable"]) == ("cancelled", True)
    on_src = stored_ids(backend_config(config_file, "src", queue))
    on_dst = stored_ids(backend_config(config_file, "dst", queue))
    assert sorted(on_src + on_dst) == sorted(ids)  # each exactly once
    assert on_src
    assert on_dst

"""Starting and ending a server process: its own session, output to a file, SIGTERM then SIGKILL."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from pathlib import Path

__all__ = ["kill", "spawn", "stop_signal", "terminate"]


def spawn(argv: list[str], cwd: Path, output: Path) -> subprocess.Popen[bytes]:
    """Start ``argv`` in ``cwd`` in a session of its own, stdout and stderr appended to ``output``.

    Its own session: the caller's Ctrl-C does not kill it before its owner stops it.
    """
    with open(output, "ab") as stdio:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdio,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM and wait; SIGKILL if it has not exited within ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        kill(proc)


def kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL and wait for it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()


def _all_threads_stopped(pid: int) -> bool | None:
    """Whether every thread of ``pid`` is stopped (state ``T``); None where /proc cannot tell."""
    states: list[str] = []
    try:
        for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
            with contextlib.suppress(OSError):
                states.append(stat.read_text().rpartition(")")[2].split()[0])
    except OSError:
        return None
    if not states:
        return None
    return all(state in ("T", "t") for state in states)


def stop_signal(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGSTOP ``proc`` and return once all its threads are stopped (Linux /proc; elsewhere at
    once). A multi-threaded server (KeyDB's network threads) may otherwise answer a request
    sent right after the signal."""
    proc.send_signal(signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stopped = _all_threads_stopped(proc.pid)
        if stopped is None or stopped:
            return
        time.sleep(0.005)

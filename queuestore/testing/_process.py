"""Starting and ending a server process: its own session, output to a file, SIGTERM then SIGKILL."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from pathlib import Path

__all__ = ["kill", "spawn", "terminate"]


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

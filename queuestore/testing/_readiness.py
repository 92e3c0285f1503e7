"""Waiting for a freshly spawned server to answer, and the log tails that say why it did not."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from queuestore.testing._ports import HOST

__all__ = ["log_tails", "wait_ready"]


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout: float) -> str | None:
    """Poll until the server answers PING and INFO says it is not loading.

    Args:
        proc: the server process (an exit ends the wait at once).
        port: its loopback port.
        timeout: seconds to wait at most.

    Returns:
        None once it is ready, else why it is not (it exited, or the last error before the timeout).
    """
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    client = redis.Redis(host=HOST, port=port, socket_connect_timeout=0.5, socket_timeout=2.0)
    try:
        while True:
            code = proc.poll()
            if code is not None:
                return f"exited with code {code} while starting"
            try:
                if client.ping():
                    info = client.info("persistence")
                    if not info.get("loading") and not info.get("async_loading"):
                        return None
                    last_error = "still loading its data"
            except redis.exceptions.BusyLoadingError:
                last_error = "still loading its data"
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                return f"did not become ready within {timeout:.0f}s ({last_error})"
            time.sleep(0.05)
    finally:
        client.close()


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def log_tails(*paths: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of each file that has any, joined; ``(empty)`` if none has."""
    return "\n".join(part for part in (_tail(path, lines) for path in paths) if part.strip()) or "(empty)"

"""No orphans: every server this process starts is stopped at exit, and servers left behind by
an earlier run that was killed before it could clean up are reaped by the next one."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Protocol

__all__ = ["PID_FILE", "base_dir", "reap_orphans", "stop_all", "track", "untrack"]

PID_FILE = "server.pid"
_BASE_PREFIX = "queuestore-servers-"


class _Stoppable(Protocol):
    def stop(self) -> None: ...


_lock = threading.RLock()
_live: dict[int, _Stoppable] = {}  # id(server) -> server, while its process may run
_base_dir: Path | None = None


def track(server: _Stoppable) -> None:
    """Remember a server whose process now runs, so :func:`stop_all` stops it."""
    with _lock:
        _live[id(server)] = server


def untrack(server: _Stoppable) -> None:
    """Forget a server whose process has ended."""
    with _lock:
        _live.pop(id(server), None)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans(tmp_root: str | None = None) -> int:
    """Kill servers left behind by earlier runs that died without cleaning up.

    Looks only at ``<tmp>/queuestore-servers-<ownerpid>-*`` dirs whose owner process is gone,
    and kills only the processes recorded there whose working dir is still that server's dir
    (so it never touches a server it did not start).

    Args:
        tmp_root: where to look; default: the system temp dir.

    Returns:
        How many processes it killed.
    """
    root = Path(tmp_root or tempfile.gettempdir())
    killed = 0
    for base in root.glob(f"{_BASE_PREFIX}*"):
        try:
            owner = int(base.name[len(_BASE_PREFIX) :].split("-", 1)[0])
        except ValueError:
            continue
        if owner == os.getpid() or _pid_alive(owner):
            continue
        for pidfile in base.glob(f"*/{PID_FILE}"):
            with contextlib.suppress(OSError, ValueError):
                pid = int(pidfile.read_text().strip())
                # redis rewrites its argv (proctitle), but its cwd is still its own dir
                if os.readlink(f"/proc/{pid}/cwd") == str(pidfile.parent):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
        shutil.rmtree(base, ignore_errors=True)
    return killed


def base_dir() -> Path:
    """This process's parent dir for server dirs (made on first use, removed by :func:`stop_all`)."""
    global _base_dir
    with _lock:
        if _base_dir is None or not _base_dir.exists():
            reap_orphans()
            _base_dir = Path(tempfile.mkdtemp(prefix=f"{_BASE_PREFIX}{os.getpid()}-"))
        return _base_dir


def stop_all() -> None:
    """Stop every server this process started and remove their dirs. Safe to call twice."""
    global _base_dir
    with _lock:
        servers = list(_live.values())
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop()
    with _lock:
        _live.clear()
        if _base_dir is not None:
            shutil.rmtree(_base_dir, ignore_errors=True)
            _base_dir = None


atexit.register(stop_all)

"""The status file ``migrate run`` keeps, so ``migrate status`` and ``migrate cancel`` in other
processes on the same machine can see and stop it.

One JSON file per queue in the state directory (``$QUEUESTORE_STATE_DIR``, else
``$XDG_STATE_HOME/queuestore``, else ``~/.local/state/queuestore``), written atomically
(temp file + rename) on every status change. It holds the last status snapshot, the pid
of the running ``migrate run`` and the command that resumes it.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import msgspec

from queuestore.migration import MigrationStatus

__all__ = ["RunRecord", "check_writable", "load", "pid_alive", "save", "state_dir", "status_path"]

STATE_ENV = "QUEUESTORE_STATE_DIR"
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class RunRecord(msgspec.Struct, kw_only=True):
    """What a ``migrate run`` process recorded about its migration."""

    status: MigrationStatus
    pid: int
    target: str
    resume_command: str
    interrupted: bool = False


def state_dir() -> Path:
    """Where status files live (see the module docstring)."""
    explicit = os.environ.get(STATE_ENV, "").strip()
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_STATE_HOME", "").strip()
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "queuestore"


def status_path(queue: str) -> Path:
    """The status file of ``queue`` (a readable prefix plus a hash, safe for any queue name)."""
    digest = hashlib.sha256(queue.encode()).hexdigest()[:12]
    return state_dir() / f"migration-{_SAFE.sub('_', queue)[:40]}-{digest}.json"


def check_writable() -> None:
    """Make sure status files can be written, before anything starts.

    Raises:
        OSError: the state directory cannot be created or written.
    """
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".probe.{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()


def save(record: RunRecord) -> None:
    """Write ``record`` atomically.

    Raises:
        OSError: the state directory cannot be written.
    """
    path = status_path(record.status.queue)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(msgspec.json.encode(record))
    os.replace(tmp, path)


def load(queue: str) -> RunRecord | None:
    """The last record of ``queue``, or None when there is none.

    Raises:
        OSError: the file exists but cannot be read.
        msgspec.DecodeError: the file is not a status record.
    """
    path = status_path(queue)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return msgspec.json.decode(data, type=RunRecord)


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (on this machine)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

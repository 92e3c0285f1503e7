"""A throwaway ``redis-server`` for one benchmark run.

Standard library only. The server listens on a free loopback port (never 6379), keeps its
files in a private temp dir, runs with ``--save "" --appendonly no`` (the benchmark measures
the client path, not the disk) and the slow log off (it would add timing-dependent memory to
the memory check), and is stopped by :meth:`BenchServer.stop` -- which the CLI
calls in a ``finally`` (so also on Ctrl-C and on SIGTERM, which the CLI turns into SystemExit)
-- and at interpreter exit as a last resort.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["BenchServer", "ServerStartError", "free_port"]

HOST = "127.0.0.1"
FORBIDDEN_PORTS = frozenset({6379, 16379})
SERVER_BIN_ENV = "QUEUESTORE_BENCH_SERVER_BIN"


class ServerStartError(RuntimeError):
    """The server binary is missing, or the server did not come up."""


def free_port() -> int:
    """A free loopback TCP port (never 6379)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if port not in FORBIDDEN_PORTS:
            return port


def _ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class BenchServer:
    """One ``redis-server`` (or whatever ``$QUEUESTORE_BENCH_SERVER_BIN`` names) for a run.

    Args:
        binary: the server binary; default ``$QUEUESTORE_BENCH_SERVER_BIN`` or ``redis-server``.
        extra_args: more ``--name value`` arguments.
    """

    def __init__(self, binary: str | None = None, extra_args: list[str] | None = None) -> None:
        name = binary or os.environ.get(SERVER_BIN_ENV) or "redis-server"
        found = shutil.which(name)
        if found is None:
            raise ServerStartError(
                f"{name!r} not found on PATH: install Redis (e.g. `apt-get install redis-server`), "
                f"set ${SERVER_BIN_ENV}, or point the harness at a running server with --url"
            )
        self.binary = found
        self.extra_args = list(extra_args or [])
        self.port = 0
        self.dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> Self:
        """Start the server and wait until it answers PING.

        Raises:
            ServerStartError: it exited or did not answer within ``timeout`` (the log tail says why).
        """
        self.dir = Path(tempfile.mkdtemp(prefix="queuestore-bench-"))
        atexit.register(self.stop)
        for _attempt in range(5):
            self.port = free_port()
            argv = [
                self.binary,
                "--port", str(self.port),
                "--bind", HOST,
                "--dir", str(self.dir),
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
                "--logfile", "server.log",
                "--maxmemory-policy", "noeviction",
                # the slow log keeps up to 128 commands' args (~4 KB each) in used_memory, and
                # what lands there depends on timing: hundreds of KB of noise in the memory check
                "--slowlog-log-slower-than", "-1",
                *self.extra_args,
            ]  # fmt: skip
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    break
                if _ping(self.port):
                    return self
                time.sleep(0.02)
            log = self._log_tail()
            self.stop(remove_dir=False)
            if "Address already in use" not in log:
                raise ServerStartError(f"{self.binary} did not start on port {self.port}:\n{log}")
        raise ServerStartError(f"{self.binary}: no free port after 5 attempts")

    def _log_tail(self) -> str:
        if self.dir is None:
            return ""
        try:
            return "\n".join((self.dir / "server.log").read_text(errors="replace").splitlines()[-15:])
        except OSError:
            return "(no log)"

    def stop(self, remove_dir: bool = True) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and remove its dir. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5.0)
        if remove_dir and self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

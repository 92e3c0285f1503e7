"""One real standalone Redis-compatible server on a free loopback port, in its own temp dir."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio.to_thread
import redis

from queuestore.testing import _lifetime, _process
from queuestore.testing._binaries import server_binary
from queuestore.testing._errors import ServerStartError
from queuestore.testing._ports import FORBIDDEN_PORTS, HOST, free_port
from queuestore.testing._readiness import log_tails, wait_ready

__all__ = ["RedisServer"]

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
_CONF_FILE = "server.conf"
_STDIO_FILE = "stdio.log"


class RedisServer:
    """One real Redis-compatible server process on a free loopback port.

    Use it as a context manager, sync (``with``) or async (``async with``: start and stop run
    in a worker thread): it is started on entry, stopped and its dir removed on exit. Or call
    :meth:`start` / :meth:`stop` yourself; whatever is left running is stopped at exit.

    Args:
        appendonly: turn on the AOF (``appendonly yes``).
        appendfsync: ``always`` | ``everysec`` | ``no`` (only with ``appendonly``).
        extra_args: more ``--name value`` arguments, appended last (they win).
        port: a fixed port (never 6379); default: a free one, re-picked if taken.
        dir: the server's working dir; default: a new one under this process's temp dir.
        binary: the server binary; default: ``$QUEUESTORE_TEST_SERVER_BIN`` or ``redis-server``.

    Raises:
        ServerBinaryNotFoundError: the binary is missing.
        ValueError: a reserved port or an unknown ``appendfsync``.
    """

    def __init__(
        self,
        *,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        extra_args: list[str] | None = None,
        port: int | None = None,
        dir: str | os.PathLike[str] | None = None,
        binary: str | None = None,
    ) -> None:
        if port is not None and port in FORBIDDEN_PORTS:
            raise ValueError(f"port {port} is reserved for the machine's shared Redis; pick another")
        if appendfsync not in ("always", "everysec", "no"):
            raise ValueError(f"appendfsync must be 'always', 'everysec' or 'no', got {appendfsync!r}")
        self.binary = server_binary(binary)
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.extra_args = list(extra_args or [])
        self._fixed_port = port is not None
        self._port = port if port is not None else free_port()
        self._own_dir = dir is None
        self._dir = (
            Path(dir)
            if dir is not None
            else Path(tempfile.mkdtemp(prefix="redis-", dir=_lifetime.base_dir()))
        )
        self._dir.mkdir(parents=True, exist_ok=True)
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._clients: list[redis.Redis] = []

    # -- where it is -------------------------------------------------------------------------
    @property
    def host(self) -> str:
        """``"127.0.0.1"``."""
        return HOST

    @property
    def port(self) -> int:
        """The TCP port (it changes only if :meth:`start` had to re-pick a taken one)."""
        return self._port

    @property
    def url(self) -> str:
        """``"redis://127.0.0.1:PORT/0"``."""
        return f"redis://{HOST}:{self._port}/0"

    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"``."""
        return f"{HOST}:{self._port}"

    @property
    def dir(self) -> Path:
        """The working dir: config, log, AOF and RDB files."""
        return self._dir

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self._dir / "server.log"

    @property
    def pid(self) -> int | None:
        """The process id while it runs, else None."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the process is alive (a paused server is still running)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def paused(self) -> bool:
        """Whether the process is frozen by :meth:`pause`."""
        return self._paused and self.running

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"<RedisServer {self.address} {Path(self.binary).name} {state} dir={str(self._dir)!r}>"

    # -- config ------------------------------------------------------------------------------
    def config_lines(self) -> list[str]:
        """The config file the server starts with (``extra_args`` come after it on argv)."""
        return [
            f"port {self._port}",
            f"bind {HOST}",
            "daemonize no",
            f'dir "{self._dir}"',
            'logfile "server.log"',
            "loglevel notice",
            'save ""',
            'dbfilename "dump.rdb"',
            f"appendonly {'yes' if self.appendonly else 'no'}",
            f"appendfsync {self.appendfsync}",
            "maxmemory-policy noeviction",
        ]

    def _argv(self) -> list[str]:
        conf = self._dir / _CONF_FILE
        conf.write_text("\n".join(self.config_lines()) + "\n")
        return [self.binary, str(conf), *self.extra_args]

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Self:
        """Start the server; return once it answers PING and has finished loading.

        Returns:
            The server itself.

        Raises:
            ServerStartError: it exited or did not answer within ~10 s (the log tail is in the message).
        """
        if self.running:
            return self
        attempts = 1 if self._fixed_port else 5
        for attempt in range(1, attempts + 1):
            try:
                self._spawn_and_wait()
                return self
            except ServerStartError as exc:
                if attempt < attempts and "Address already in use" in str(exc):
                    self._port = free_port()  # somebody took the port between pick and bind
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _spawn_and_wait(self) -> None:
        self.log_path.unlink(missing_ok=True)
        self._proc = _process.spawn(self._argv(), self._dir, self._dir / _STDIO_FILE)
        self._paused = False
        (self._dir / _lifetime.PID_FILE).write_text(str(self._proc.pid))
        _lifetime.track(self)
        why = wait_ready(self._proc, self._port, START_TIMEOUT)
        if why is not None:
            failure = self._startup_failure(why)
            self.kill()
            raise failure

    def _startup_failure(self, why: str) -> ServerStartError:
        logs = log_tails(self._dir / _STDIO_FILE, self.log_path)
        return ServerStartError(
            f"{Path(self.binary).name} on {self.address} {why}.\n"
            f"argv: {' '.join(self._argv())}\n--- log tail ({self._dir}) ---\n{logs}"
        )

    def stop(self) -> None:
        """Shut the server down (SIGTERM: flushes the AOF; SIGKILL after 10 s). Keeps its dir."""
        self._close_clients()
        if self._proc is not None:
            self.resume()  # a frozen process would not see the SIGTERM
            _process.terminate(self._proc, STOP_TIMEOUT)
        self._forget()

    def kill(self) -> None:
        """SIGKILL, like ``kill -9``: no shutdown, no AOF flush beyond what fsync already did."""
        if self._proc is not None:
            _process.kill(self._proc)
        self._forget()

    def pause(self) -> None:
        """SIGSTOP: the process freezes; connections stay open but nothing is answered."""
        if self._proc is not None and self.running and not self._paused:
            _process.stop_signal(self._proc)
            self._paused = True

    def resume(self) -> None:
        """SIGCONT: a paused server carries on where it stopped."""
        if self._proc is not None and self.running and self._paused:
            self._proc.send_signal(signal.SIGCONT)
        self._paused = False

    @contextlib.contextmanager
    def frozen(self) -> Iterator[Self]:
        """Pause the server for the ``with`` block; it resumes on exit, also on an error."""
        self.pause()
        try:
            yield self
        finally:
            self.resume()

    def restart(self) -> Self:
        """Stop (if running) and start again on the same port and dir; waits until loaded.

        Returns:
            The server itself.

        Raises:
            ServerStartError: it did not come back (the port was taken, or it failed to load).
        """
        if self.running:
            self.stop()
        fixed, self._fixed_port = self._fixed_port, True  # same port, or fail loudly
        try:
            return self.start()
        finally:
            self._fixed_port = fixed

    def cleanup(self) -> None:
        """Stop the server and remove its dir (if this object made it)."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    def _forget(self) -> None:
        self._paused = False
        _lifetime.untrack(self)
        (self._dir / _lifetime.PID_FILE).unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()

    async def __aenter__(self) -> Self:
        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await anyio.to_thread.run_sync(self.cleanup)

    # -- clients -----------------------------------------------------------------------------
    def sync_client(self, **kwargs: Any) -> redis.Redis:
        """A sync redis-py client (db 0, ``decode_responses=False``), closed by :meth:`stop`.

        Args:
            **kwargs: more ``redis.Redis`` options; they override the defaults.
        """
        options: dict[str, Any] = {
            "db": 0,
            "decode_responses": False,
            "socket_timeout": 10.0,
            "socket_connect_timeout": 2.0,
        }
        options.update(kwargs)
        client = redis.Redis(host=HOST, port=self._port, **options)
        self._clients.append(client)
        return client

    def _close_clients(self) -> None:
        clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()

    def flushall(self) -> None:
        """Delete every key (the script cache is kept)."""
        client = redis.Redis(host=HOST, port=self._port, socket_timeout=10.0)
        try:
            client.flushall()
        finally:
            client.close()

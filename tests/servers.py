"""Real Redis servers for the tests: standalone, with AOF, and a 3-primary Redis Cluster.

No mocks: every fixture is a real ``redis-server`` process (or whatever
``QUEUESTORE_TEST_SERVER_BIN`` names: valkey-server, keydb-server...) listening on
a free loopback port, with its files in a private temp dir. Port 6379 is never
used (a shared Redis runs there on the development machines).

Lifetime: ``start()`` waits until the server answers PING and has finished
loading; ``stop()`` shuts it down (SIGTERM, then SIGKILL after 10 s); ``kill()``
is ``kill -9``; ``restart()`` starts it again on the same port and dir, so its
AOF/RDB is reloaded. Every server started by this module is also stopped at
interpreter exit (atexit), and servers orphaned by a run that was itself
killed -9 are reaped by the next run (see :func:`reap_orphans`).

Only the standard library and redis-py are used, so benchmarks and scripts can
import this module too.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import redis
import redis.cluster

__all__ = [
    "CLI_BIN_ENV",
    "FORBIDDEN_PORTS",
    "HOST",
    "SERVER_BIN_ENV",
    "RedisCluster",
    "RedisServer",
    "ServerBinaryNotFoundError",
    "ServerError",
    "ServerFactory",
    "ServerStartError",
    "cli_binary",
    "free_port",
    "reap_orphans",
    "server_binary",
    "stop_all",
]

HOST = "127.0.0.1"
SERVER_BIN_ENV = "QUEUESTORE_TEST_SERVER_BIN"
CLI_BIN_ENV = "QUEUESTORE_TEST_CLI_BIN"
#: never bind these: 6379 is the machine's shared Redis
FORBIDDEN_PORTS = frozenset({6379, 16379})
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
CLUSTER_TIMEOUT = 60.0
_BASE_PREFIX = "queuestore-servers-"
_CONF_NAME = "server.conf"
_PID_NAME = "server.pid"


class ServerError(RuntimeError):
    """A test server could not be found, started or driven."""


class ServerBinaryNotFoundError(ServerError):
    """The server (or CLI) binary is not installed or not where the env var says."""


class ServerStartError(ServerError):
    """The server did not come up; the message carries the tail of its log."""


# -- binaries ------------------------------------------------------------------------------------


def _resolve_binary(env_var: str, default: str, what: str) -> str:
    configured = os.environ.get(env_var, "").strip()
    name = configured or default
    found = shutil.which(name)
    if found is None:
        if configured:
            raise ServerBinaryNotFoundError(
                f"{env_var}={configured!r} does not name an executable {what} (not found, or not "
                f"executable). Point it at a Redis-compatible binary (redis-server, valkey-server, "
                f"keydb-server; redis-cli for the CLI) or unset it to use {default!r} from PATH."
            )
        raise ServerBinaryNotFoundError(
            f"{default!r} was not found on PATH. Install it (Debian: apt-get install -y redis-server, "
            f"which also brings redis-cli) or set {env_var} to a Redis-compatible {what}."
        )
    return found


def server_binary() -> str:
    """The server binary: ``$QUEUESTORE_TEST_SERVER_BIN`` or ``redis-server`` on PATH.

    Raises:
        ServerBinaryNotFoundError: with what to install or set.
    """
    return _resolve_binary(SERVER_BIN_ENV, "redis-server", "server binary")


def cli_binary() -> str:
    """The CLI used to create clusters: ``$QUEUESTORE_TEST_CLI_BIN`` or ``redis-cli`` on PATH.

    Raises:
        ServerBinaryNotFoundError: with what to install or set.
    """
    return _resolve_binary(CLI_BIN_ENV, "redis-cli", "CLI binary")


# -- ports and dirs ------------------------------------------------------------------------------


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port that is free now, whose cluster-bus port (+10000) is free too.

    Picked at random in 20000..45000 (below the kernel's ephemeral range, so
    client sockets rarely take it), never 6379. Another process can still take it
    before the server binds: :meth:`RedisServer.start` retries on another port.
    """
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randrange(20000, 45000)
        if port in FORBIDDEN_PORTS or port + 10000 in FORBIDDEN_PORTS:
            continue
        if _port_is_free(port) and _port_is_free(port + 10000):
            return port
    raise ServerError("no free loopback port found in 20000..45000")


_lock = threading.RLock()
_live: dict[int, RedisServer] = {}  # id(server) -> server, while its process may run
_base_dir: Path | None = None


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

    Looks only at ``<tmp>/queuestore-servers-<ownerpid>-*`` dirs whose owner
    process is gone, and kills only the processes recorded there whose working
    dir is still that server's dir (so it never touches a server it did not start).
    Returns how many processes it killed.
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
        for pidfile in base.glob(f"*/{_PID_NAME}"):
            with contextlib.suppress(OSError, ValueError):
                pid = int(pidfile.read_text().strip())
                # redis rewrites its argv (proctitle), but its cwd is still its own dir
                if os.readlink(f"/proc/{pid}/cwd") == str(pidfile.parent):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
        shutil.rmtree(base, ignore_errors=True)
    return killed


def _base() -> Path:
    """This process's parent dir for server dirs (made on first use, removed at exit)."""
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


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# -- standalone ----------------------------------------------------------------------------------


class RedisServer:
    """One real Redis-compatible server process on a free loopback port.

    Args:
        appendonly: turn on the AOF (``--appendonly yes``).
        appendfsync: ``always`` | ``everysec`` | ``no`` (only with ``appendonly``).
        extra_args: more ``--name value`` arguments, appended last (they win).
        port: a fixed port (never 6379); default: a free one, re-picked if taken.
        dir: the server's working dir; default: a new one under this run's temp dir.

    Use as a context manager (start, then stop and remove its dir), or call
    :meth:`start` / :meth:`stop` yourself; whatever is left running is stopped at exit.

    Raises:
        ServerBinaryNotFoundError: from the constructor, when the binary is missing.
    """

    def __init__(
        self,
        *,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        extra_args: list[str] | None = None,
        port: int | None = None,
        dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if port is not None and port in FORBIDDEN_PORTS:
            raise ValueError(f"port {port} is reserved for the machine's shared Redis; pick another")
        if appendfsync not in ("always", "everysec", "no"):
            raise ValueError(f"appendfsync must be 'always', 'everysec' or 'no', got {appendfsync!r}")
        self.binary = server_binary()
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.extra_args = list(extra_args or [])
        self._fixed_port = port is not None
        self._port = port if port is not None else free_port()
        self._own_dir = dir is None
        self._dir = Path(dir) if dir is not None else Path(tempfile.mkdtemp(prefix="redis-", dir=_base()))
        self._dir.mkdir(parents=True, exist_ok=True)
        self._proc: subprocess.Popen[bytes] | None = None
        self._clients: list[redis.Redis] = []

    # -- properties --------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self._port}/0"

    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"``."""
        return f"{HOST}:{self._port}"

    @property
    def dir(self) -> Path:
        return self._dir

    @property
    def log_path(self) -> Path:
        return self._dir / "server.log"

    @property
    def pid(self) -> int | None:
        """The process id while it runs, else None."""
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

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
        conf = self._dir / _CONF_NAME
        conf.write_text("\n".join(self.config_lines()) + "\n")
        return [self.binary, str(conf), *self.extra_args]

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Self:
        """Start the server; return once it answers PING and has finished loading.

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
        stdio = open(self._dir / "stdio.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            self._proc = subprocess.Popen(
                self._argv(),
                cwd=self._dir,
                stdin=subprocess.DEVNULL,
                stdout=stdio,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our Ctrl-C doesn't kill it before the fixtures stop it
            )
        finally:
            stdio.close()
        (self._dir / _PID_NAME).write_text(str(self._proc.pid))
        with _lock:
            _live[id(self)] = self
        try:
            self._wait_ready(START_TIMEOUT)
        except ServerStartError:
            self.kill()
            raise

    def _startup_failure(self, why: str) -> ServerStartError:
        logs = "\n".join(
            part for part in (_tail(self._dir / "stdio.log"), _tail(self.log_path)) if part.strip()
        )
        return ServerStartError(
            f"{Path(self.binary).name} on {self.address} {why}.\n"
            f"argv: {' '.join(self._argv())}\n--- log tail ({self._dir}) ---\n{logs or '(empty)'}"
        )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error = "no answer"
        client = redis.Redis(host=HOST, port=self._port, socket_connect_timeout=0.5, socket_timeout=2.0)
        try:
            while True:
                assert self._proc is not None
                code = self._proc.poll()
                if code is not None:
                    raise self._startup_failure(f"exited with code {code} while starting")
                try:
                    if client.ping():
                        info = client.info("persistence")
                        if not info.get("loading") and not info.get("async_loading"):
                            return
                        last_error = "still loading its data"
                except redis.exceptions.BusyLoadingError:
                    last_error = "still loading its data"
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
                if time.monotonic() > deadline:
                    raise self._startup_failure(f"did not become ready within {timeout:.0f}s ({last_error})")
                time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        """Shut the server down (SIGTERM: flushes the AOF; SIGKILL after 10 s). Keeps its dir."""
        self._close_clients()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
        self._forget()

    def kill(self) -> None:
        """SIGKILL, like ``kill -9``: no shutdown, no AOF flush beyond what fsync already did."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        self._forget()

    def restart(self) -> Self:
        """Stop (if running) and start again on the same port and dir; waits until loaded."""
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
        with _lock:
            _live.pop(id(self), None)
        (self._dir / _PID_NAME).unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    # -- clients -----------------------------------------------------------------------------
    def sync_client(self, **kwargs: Any) -> redis.Redis:
        """A sync redis-py client (db 0, ``decode_responses=False``), closed by :meth:`stop`."""
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
        """Delete every key (and the script cache is kept)."""
        client = redis.Redis(host=HOST, port=self._port, socket_timeout=10.0)
        try:
            client.flushall()
        finally:
            client.close()


# -- a factory for tests that need their own servers ---------------------------------------------


class ServerFactory:
    """Makes started :class:`RedisServer` instances; :meth:`close` stops and removes them all.

    The ``redis_server_factory`` fixture is one of these: ``redis_server_factory(appendonly=True)``.
    """

    def __init__(self) -> None:
        self.servers: list[RedisServer] = []

    def __call__(self, **kwargs: Any) -> RedisServer:
        server = RedisServer(**kwargs)
        self.servers.append(server)
        return server.start()

    def close(self) -> None:
        servers, self.servers = self.servers, []
        for server in servers:
            server.cleanup()


# -- cluster -------------------------------------------------------------------------------------


class RedisCluster:
    """A real Redis Cluster of ``primaries`` nodes (3 by default, no replicas), all slots covered.

    Made with ``redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes``; ready when
    every node reports ``cluster_state:ok`` and all nodes agree on who owns which slots.
    """

    def __init__(self, primaries: int = 3, *, extra_args: list[str] | None = None) -> None:
        if primaries < 3:
            raise ValueError("a Redis Cluster needs at least 3 primaries")
        self.cli = cli_binary()
        cluster_args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
            "--cluster-require-full-coverage",
            "yes",
        ]
        self.nodes: list[RedisServer] = [
            RedisServer(extra_args=[*cluster_args, *(extra_args or [])]) for _ in range(primaries)
        ]
        self._clients: list[redis.cluster.RedisCluster] = []

    @property
    def startup_nodes(self) -> list[str]:
        return [node.address for node in self.nodes]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    @property
    def running(self) -> bool:
        return all(node.running for node in self.nodes)

    def __repr__(self) -> str:
        return f"<RedisCluster {' '.join(self.startup_nodes)} {'running' if self.running else 'stopped'}>"

    def start(self) -> Self:
        """Start the nodes, create the cluster, wait until it is ok everywhere.

        Raises:
            ServerStartError: a node or the cluster creation failed (the output is in the message).
        """
        try:
            for node in self.nodes:
                node.start()
            if not self._state_ok_everywhere():
                self._create()
            self._wait_ready(CLUSTER_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def _create(self) -> None:
        argv = [
            self.cli,
            "--cluster",
            "create",
            *self.startup_nodes,
            "--cluster-replicas",
            "0",
            "--cluster-yes",
        ]
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=CLUSTER_TIMEOUT, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired as exc:
            raise ServerStartError(f"{' '.join(argv)} did not finish in {CLUSTER_TIMEOUT:.0f}s") from exc
        if done.returncode != 0:
            raise ServerStartError(
                f"{' '.join(argv)} failed with code {done.returncode}:\n"
                f"{done.stdout[-3000:]}{done.stderr[-2000:]}"
            )

    def _node_views(self) -> Iterator[tuple[dict[str, str], list[tuple[int, int, int]]]]:
        for node in self.nodes:
            client = redis.Redis(host=HOST, port=node.port, socket_timeout=5.0, decode_responses=True)
            try:
                raw_info = client.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
                info = dict(line.split(":", 1) for line in str(raw_info).splitlines() if ":" in line)
                slots = client.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
            finally:
                client.close()
            yield info, sorted((int(s[0]), int(s[1]), int(s[2][1])) for s in slots)

    def _state_ok_everywhere(self) -> bool:
        views = list(self._node_views())
        ok = all(
            info.get("cluster_state") == "ok" and info.get("cluster_slots_assigned") == "16384"
            for info, _ in views
        )
        return ok and all(slots == views[0][1] for _, slots in views)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._state_ok_everywhere():
            if time.monotonic() > deadline:
                detail = "\n".join(
                    f"{n.address}: {info}"
                    for n, (info, _) in zip(self.nodes, self._node_views(), strict=True)
                )
                raise ServerStartError(f"cluster not ok on every node within {timeout:.0f}s:\n{detail}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop every node and remove their dirs."""
        clients, self._clients = self._clients, []
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()
        for node in self.nodes:
            node.cleanup()

    def flushall(self) -> None:
        """FLUSHALL on every primary."""
        for node in self.nodes:
            node.flushall()

    def sync_client(self, **kwargs: Any) -> redis.cluster.RedisCluster:
        """A sync ``redis.cluster.RedisCluster`` client (``decode_responses=False``), closed by stop()."""
        options: dict[str, Any] = {"decode_responses": False}
        options.update(kwargs)
        startup = [redis.cluster.ClusterNode(HOST, node.port) for node in self.nodes]  # type: ignore[no-untyped-call]
        client = redis.cluster.RedisCluster(startup_nodes=startup, **options)
        self._clients.append(client)
        return client

    def node_for_slot(self, slot: int) -> RedisServer:
        """The node that owns ``slot`` (from CLUSTER SLOTS on the first node)."""
        _, slots = next(self._node_views())
        for start, end, port in slots:
            if start <= slot <= end:
                return next(node for node in self.nodes if node.port == port)
        raise ServerError(f"no node owns slot {slot}")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

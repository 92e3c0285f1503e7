"""A real Redis Cluster of throwaway servers: 3 primaries (or more), no replicas, every slot covered."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

import anyio.to_thread
import redis
import redis.cluster

from queuestore.testing._binaries import cli_binary
from queuestore.testing._errors import ServerError, ServerStartError
from queuestore.testing._ports import HOST
from queuestore.testing._server import RedisServer

__all__ = ["RedisCluster"]

CLUSTER_TIMEOUT = 60.0
_SlotMap = list[tuple[int, int, int]]  # (first slot, last slot, owner port)


class RedisCluster:
    """A real Redis Cluster of ``primaries`` nodes (3 by default, no replicas), all slots covered.

    :meth:`start` starts the nodes and runs ``redis-cli --cluster create ... --cluster-replicas 0
    --cluster-yes``; it returns when every node reports ``cluster_state:ok`` and all nodes agree
    on who owns which slots. A context manager, sync or async, like :class:`RedisServer`.

    Args:
        primaries: how many nodes (at least 3).
        appendonly: every node keeps an AOF (as :class:`RedisServer` does); with it a node
            killed (:meth:`RedisServer.kill`) and restarted rejoins with its data.
        appendfsync: every node's AOF fsync policy (``always``, ``everysec`` or ``no``).
        extra_args: more ``--name value`` arguments for every node.
        binary: the server binary, as for :class:`RedisServer`.
        cli: the CLI; default: ``$QUEUESTORE_TEST_CLI_BIN`` or ``redis-cli``.

    Raises:
        ServerBinaryNotFoundError: the server or CLI binary is missing.
        ValueError: fewer than 3 primaries, or an unknown ``appendfsync``.
    """

    def __init__(
        self,
        primaries: int = 3,
        *,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        extra_args: list[str] | None = None,
        binary: str | None = None,
        cli: str | None = None,
    ) -> None:
        if primaries < 3:
            raise ValueError("a Redis Cluster needs at least 3 primaries")
        self.cli = cli_binary(cli)
        cluster_args = [
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "5000",
            "--cluster-require-full-coverage", "yes",
        ]  # fmt: skip
        self.nodes: list[RedisServer] = [
            RedisServer(
                appendonly=appendonly,
                appendfsync=appendfsync,
                extra_args=[*cluster_args, *(extra_args or [])],
                binary=binary,
            )
            for _ in range(primaries)
        ]
        self._clients: list[redis.cluster.RedisCluster] = []

    @property
    def startup_nodes(self) -> list[str]:
        """``["127.0.0.1:P1", ...]``, one per node."""
        return [node.address for node in self.nodes]

    @property
    def url(self) -> str:
        """The first node's URL."""
        return self.nodes[0].url

    @property
    def running(self) -> bool:
        """Whether every node runs."""
        return all(node.running for node in self.nodes)

    def __repr__(self) -> str:
        return f"<RedisCluster {' '.join(self.startup_nodes)} {'running' if self.running else 'stopped'}>"

    def start(self) -> Self:
        """Start the nodes, create the cluster, wait until it is ok everywhere.

        Returns:
            The cluster itself.

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

    def _node_views(self) -> Iterator[tuple[dict[str, str], _SlotMap]]:
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
        """A sync ``redis.cluster.RedisCluster`` client (``decode_responses=False``), closed by :meth:`stop`.

        Args:
            **kwargs: more ``RedisCluster`` options; they override the defaults.
        """
        options: dict[str, Any] = {"decode_responses": False}
        options.update(kwargs)
        startup = [redis.cluster.ClusterNode(HOST, node.port) for node in self.nodes]  # type: ignore[no-untyped-call]
        client = redis.cluster.RedisCluster(startup_nodes=startup, **options)
        self._clients.append(client)
        return client

    def node_for_slot(self, slot: int) -> RedisServer:
        """The node that owns ``slot`` (from CLUSTER SLOTS on the first node).

        Raises:
            ServerError: no node owns it.
        """
        _, slots = next(self._node_views())
        for first, last, port in slots:
            if first <= slot <= last:
                return next(node for node in self.nodes if node.port == port)
        raise ServerError(f"no node owns slot {slot}")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await anyio.to_thread.run_sync(self.stop)

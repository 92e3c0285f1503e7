"""Fixtures of the conformance suite: ``target``, ``make_backend``, ``backend`` and the event
loop (``anyio_backend``).

The memory target runs on asyncio and on trio (the memory backend is anyio-native); the
Redis targets run on asyncio only (redis.asyncio), so their trio variants are deselected
at collection, not skipped. Without trio installed the trio variants are skipped, saying so.

Server fixtures (``redis_server``, ``redis_cluster``) come from the root conftest,
``conformance_aof_server`` from here; they are requested lazily with
``request.getfixturevalue``, so a memory-only run starts no server.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aredis

from queuestore import BackendConfig, QueueBackend, default_registry
from queuestore.backends.memory import drop_namespace, unique_namespace
from queuestore.testing import RedisServer

from .targets import Target, selected_targets


async def drop_prefix(url: str, prefix: str) -> None:
    """Delete this test's keys on an external server: only those under ``prefix``
    (SCAN MATCH is fine in test cleanup; the library itself never scans)."""
    client = aredis.Redis.from_url(url)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{prefix}*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                await client.delete(*batch)
                batch.clear()
        if batch:
            await client.delete(*batch)
    finally:
        await client.aclose()


#: the event loops the suite runs on; trio only for targets that are not Redis ones
_TRIO = importlib.util.find_spec("trio") is not None
ANYIO_BACKENDS = [
    pytest.param("asyncio", id="asyncio"),
    pytest.param(
        "trio",
        id="trio",
        marks=[] if _TRIO else [pytest.mark.skip(reason="trio is not installed (nox -s tests installs it)")],
    ),
]


@pytest.fixture(params=ANYIO_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """asyncio for every target; trio too for the memory target."""
    value: str = request.param
    return value


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the trio variants of the Redis targets (they run on asyncio only)."""
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        target = params.get("target")
        on_trio = params.get("anyio_backend") == "trio"
        if on_trio and (not isinstance(target, Target) or target.topology != "memory"):
            dropped.append(item)
        else:
            keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class BackendMaker:
    """Makes open backends of one target on one store, all closed at teardown.

    Attributes:
        target: the target under test.
        queue: the test's default queue name (unique per test).
    """

    def __init__(self, target: Target, request: pytest.FixtureRequest) -> None:
        self.target = target
        self.queue = _unique("q")
        self.created: list[QueueBackend] = []
        self._namespace: str | None = None
        self.url = ""
        self.cluster_addrs: list[str] = []
        self.base_options: dict[str, Any] = dict(target.options)
        if target.topology == "memory":
            self._namespace = unique_namespace("conformance")
            self.base_options["namespace"] = self._namespace
        elif target.topology == "standalone":
            self.url = request.getfixturevalue("redis_server").url
            self.base_options["key_prefix"] = _unique("qs-conf") + ":"
        elif target.topology == "aof":
            self.url = request.getfixturevalue("conformance_aof_server").url
            self.base_options["key_prefix"] = _unique("qs-conf") + ":"
        elif target.topology == "cluster":
            cluster = request.getfixturevalue("redis_cluster")
            self.url, self.cluster_addrs = cluster.url, list(cluster.startup_nodes)
            self.base_options["key_prefix"] = _unique("qs-conf") + ":"
        elif target.topology == "external":
            self.url = os.environ.get(target.env, "").strip()
            self.base_options["key_prefix"] = _unique("qs-conf") + ":"
        else:  # pragma: no cover - a typo in targets.py
            raise pytest.UsageError(f"unknown topology {target.topology!r}")

    def other_queue(self, stem: str = "other") -> str:
        """A fresh queue name on the same store."""
        return _unique(stem)

    def config(self, queue: str | None = None, **options: Any) -> BackendConfig:
        """The BackendConfig of a backend on this test's store."""
        return BackendConfig(
            type=self.target.type,
            name=f"conformance-{self.target.id}",
            url=self.url,
            queue=queue or self.queue,
            cluster_mode=self.target.topology == "cluster",
            cluster_addrs=self.cluster_addrs,
            options={**self.base_options, **options},
        )

    async def __call__(self, queue: str | None = None, **options: Any) -> QueueBackend:
        """Create and open a backend on ``queue`` (default: the test's queue) with extra options."""
        backend: QueueBackend = (
            await default_registry().factory(self.target.type).create(self.config(queue, **options))
        )
        self.created.append(backend)
        return backend

    async def aclose(self) -> None:
        for backend in self.created:
            await backend.aclose()
        if self.target.topology == "external":
            await drop_prefix(self.url, self.base_options["key_prefix"])
        if self._namespace is not None:
            drop_namespace(self._namespace)


@pytest.fixture(scope="session")
def conformance_aof_server() -> Iterator[RedisServer]:
    """A server shared by the ``aof`` targets: every write fsynced to the AOF before the reply."""
    with RedisServer(appendonly=True, appendfsync="always") as server:
        yield server


@pytest.fixture(params=[t.param() for t in selected_targets()])
def target(request: pytest.FixtureRequest) -> Target:
    """The backend type and topology under test."""
    param: Target = request.param
    reason = param.skip_reason()
    if reason is not None:  # one place, so ``-ra`` folds the skips into one line per variable
        pytest.skip(reason)
    return param


@pytest.fixture
async def make_backend(target: Target, request: pytest.FixtureRequest) -> AsyncIterator[BackendMaker]:
    """A factory of open backends on this test's store (closed at teardown)."""
    maker = BackendMaker(target, request)
    try:
        yield maker
    finally:
        await maker.aclose()


@pytest.fixture
async def backend(make_backend: BackendMaker) -> QueueBackend:
    """An open backend on a fresh queue with the target's default options."""
    return await make_backend()

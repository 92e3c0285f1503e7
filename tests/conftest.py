"""Root test configuration: real-server fixtures (see tests/servers.py and docs/testing.md).

Fixtures:
    anyio_backend         "asyncio" (anyio's pytest plugin runs ``async def`` tests on it)
    redis_server          session-scoped standalone server (shared: use unique key/queue names)
    aof_redis_server      per-test server with ``appendonly yes`` + ``appendfsync always``
    redis_cluster         session-scoped real 3-primary Redis Cluster (tests using it get
                          the ``cluster`` marker automatically: deselect with ``-m "not cluster"``)
    redis_server_factory  per-test callable making more servers: ``redis_server_factory(appendonly=True)``

Every server is stopped at the end of its scope, on failure and on Ctrl-C too, and
at interpreter exit as a last resort.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # make ``tests.servers`` importable without a tests/__init__.py
    sys.path.insert(0, _ROOT)

from tests.servers import RedisCluster, RedisServer, ServerFactory, stop_all  # noqa: E402


def _sigterm_to_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # A plain SIGTERM would end the run without teardown or atexit handlers; treat it as
    # Ctrl-C, so pytest stops the run and the fixtures' teardown stops every server.
    if threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "redis_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def _stop_all_servers() -> Iterator[None]:
    """Session-wide safety net: whatever a test left running is stopped at the end."""
    yield
    stop_all()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A standalone server shared by the whole session. Don't kill or restart it: use
    ``aof_redis_server`` or ``redis_server_factory`` for that."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def aof_redis_server() -> Iterator[RedisServer]:
    """A fresh server for one test, every write fsynced to the AOF before the reply."""
    server = RedisServer(appendonly=True, appendfsync="always")
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A real 3-primary Redis Cluster shared by the session (use ``flushall()`` if you must)."""
    cluster = RedisCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_server_factory() -> Iterator[ServerFactory]:
    """``redis_server_factory(**RedisServer kwargs) -> started RedisServer``; all stopped after the test."""
    factory = ServerFactory()
    try:
        yield factory
    finally:
        factory.close()

"""The project's real-server fixtures, on top of :mod:`queuestore.testing`.

Registered by tests/conftest.py as a pytest plugin. Test modules import the server classes
from here or from ``queuestore.testing`` (the same objects):

    redis_server          session-scoped standalone server (shared: use unique key/queue names)
    aof_redis_server      per-test server with ``appendonly yes`` + ``appendfsync always``
    redis_cluster         session-scoped real 3-primary Redis Cluster (tests using it get
                          the ``cluster`` marker automatically: deselect with ``-m "not cluster"``)
    redis_server_factory  per-test callable making more servers: ``redis_server_factory(appendonly=True)``

Every server is stopped at the end of its scope, on failure and on Ctrl-C too, and at
interpreter exit as a last resort.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from queuestore.testing import (
    CLI_BIN_ENV,
    SERVER_BIN_ENV,
    RedisCluster,
    RedisServer,
    ServerBinaryNotFoundError,
    ServerFactory,
    ServerStartError,
    free_port,
    reap_orphans,
    stop_all,
)

__all__ = [
    "CLI_BIN_ENV",
    "SERVER_BIN_ENV",
    "RedisCluster",
    "RedisServer",
    "ServerBinaryNotFoundError",
    "ServerFactory",
    "ServerStartError",
    "aof_redis_server",
    "free_port",
    "reap_orphans",
    "redis_cluster",
    "redis_server",
    "redis_server_factory",
]


@pytest.fixture(scope="session", autouse=True)
def _stop_all_servers() -> Iterator[None]:
    """Session-wide safety net: whatever a test left running is stopped at the end."""
    yield
    stop_all()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A standalone server shared by the whole session. Don't kill or restart it: use
    ``aof_redis_server`` or ``redis_server_factory`` for that."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def aof_redis_server() -> Iterator[RedisServer]:
    """A fresh server for one test, every write fsynced to the AOF before the reply."""
    with RedisServer(appendonly=True, appendfsync="always") as server:
        yield server


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A real 3-primary Redis Cluster shared by the session (use ``flushall()`` if you must)."""
    with RedisCluster() as cluster:
        yield cluster


@pytest.fixture
def redis_server_factory() -> Iterator[ServerFactory]:
    """``redis_server_factory(**RedisServer kwargs) -> started RedisServer``; all stopped after the test."""
    with ServerFactory() as factory:
        yield factory

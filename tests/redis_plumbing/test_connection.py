"""URL parsing, options applied to the real client, shared pools, and error translation."""

from __future__ import annotations

import gc
import os
import warnings
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aredis
from redis import exceptions as rexc

from queuestore import BackendConfig, ConfigurationError, ConnectionFailedError, Job
from queuestore._url import parse_server_url
from queuestore.backends._redis.connection import acquire_connection
from queuestore.backends._redis.errors import translate
from queuestore.backends._redis.options import RedisBackendOptions
from queuestore.backends.redis_lists import RedisListsFactory
from queuestore.errors import (
    AuthenticationFailedError,
    BackendError,
    BackendUnavailableError,
    OperationTimeoutError,
)
from tests.servers import RedisServer, free_port

pytestmark = pytest.mark.anyio


def test_parse_urls() -> None:
    p = parse_server_url("redis://user:s3cret@example.com:7000/4")
    assert (p.scheme, p.host, p.port, p.db, p.username, p.password) == (
        "redis",
        "example.com",
        7000,
        4,
        "user",
        "s3cret",
    )
    assert parse_server_url("rediss://h").port == 6379
    u = parse_server_url("unix:///tmp/redis.sock?db=3")
    assert (u.scheme, u.path, u.db) == ("unix", "/tmp/redis.sock", 3)


@pytest.mark.parametrize("url", ["", "http://h", "redis://", "redis://h/x", "redis://h:99999", "unix://"])
def test_bad_urls_name_the_field_and_hide_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_server_url(url.replace("//h", "//u:topsecret@h"))
    assert info.value.field == "url"
    assert "topsecret" not in str(info.value)


async def test_options_reach_the_real_client(redis_server: RedisServer) -> None:
    config = BackendConfig(type="redis-lists", url=redis_server.url, database=2)
    opts = RedisBackendOptions(
        max_connections=4,
        conn_timeout=2.0,
        read_timeout=0.7,
        write_timeout=0.9,
        pool_timeout=1.5,
        idle_timeout=30.0,
        max_retries=2,
        block_timeout=3.0,
        username="default",
        password="pw",
    )
    conn = acquire_connection(config, opts)
    try:
        assert acquire_connection(config, opts) is conn  # one pool per identical settings
        await conn.release()
        pool = conn.client.connection_pool
        assert isinstance(pool, aredis.ConnectionPool)
        assert (pool.max_connections, pool.timeout) == (4, 1.5)
        kw = pool.connection_kwargs
        assert (kw["db"], kw["socket_connect_timeout"], kw["socket_timeout"]) == (2, 2.0, 0.9)
        assert (kw["health_check_interval"], kw["username"], kw["password"]) == (30.0, "default", "pw")
        assert kw["retry"]._retries == 2
        blocking = conn.blocking_client
        assert isinstance(blocking, aredis.Redis)
        assert blocking.connection_pool.connection_kwargs["socket_timeout"] == pytest.approx(3.0 + 0.9 + 0.5)
        assert "pw" not in repr(opts)
    finally:
        await conn.release()


async def test_tls_and_unix_pick_their_connection_classes() -> None:
    opts = RedisBackendOptions(tls_verify=False)
    tls = acquire_connection(BackendConfig(type="redis-lists", url="rediss://127.0.0.1:1/0"), opts)
    unix = acquire_connection(BackendConfig(type="redis-lists", url="unix:///tmp/nowhere.sock"), opts)
    try:
        tls_pool = tls.client.connection_pool
        assert issubclass(tls_pool.connection_class, aredis.SSLConnection)
        assert tls_pool.connection_kwargs["ssl_cert_reqs"] == "none"
        assert issubclass(unix.client.connection_pool.connection_class, aredis.UnixDomainSocketConnection)
    finally:
        await tls.release()
        await unix.release()


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (rexc.ConnectionError("refused"), ConnectionFailedError),
        (rexc.TimeoutError("slow"), OperationTimeoutError),
        (rexc.BusyLoadingError("LOADING"), BackendUnavailableError),
        (rexc.ResponseError("OOM command not allowed"), BackendUnavailableError),
        (rexc.ResponseError("BUSY Redis is busy running a script"), BackendUnavailableError),
        (rexc.ResponseError("WRONGTYPE"), BackendError),
        (rexc.AuthenticationError("bad password"), AuthenticationFailedError),
    ],
)
def test_translation(exc: Exception, kind: type[Exception]) -> None:
    err = translate("b", "op", exc)
    assert type(err) is kind
    assert err.backend == "b"
    assert err.operation == "op"


async def test_unreachable_server_is_a_connection_failure() -> None:
    config = BackendConfig(
        type="redis-lists",
        url=f"redis://127.0.0.1:{free_port()}/0",
        queue="q",
        options={"conn_timeout": 0.3, "max_retries": 0},
    )
    with pytest.raises(ConnectionFailedError) as info:
        await RedisListsFactory().create(config)
    assert info.value.retryable
    assert info.value.operation == "connect"


async def _server_stat(server: RedisServer, section: str, field: str) -> int:
    client = aredis.Redis(host="127.0.0.1", port=server.port)
    try:
        return int((await client.info(section))[field])
    finally:
        await client.aclose()


def _open_fds() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts file descriptors in /proc")
async def test_closing_a_backend_closes_its_sockets(redis_server: RedisServer) -> None:
    config = BackendConfig(type="redis-lists", url=redis_server.url, queue="sockets")
    factory = RedisListsFactory()
    warm = await factory.create(config)  # imports, script cache: what stays for the process
    await warm.aclose()
    before_clients = await _server_stat(redis_server, "clients", "connected_clients")
    before_fds = _open_fds()
    gc.disable()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for i in range(100):
                backend = await factory.create(config)
                await backend.enqueue(Job(id=f"j{i}", payload={}))
                assert (await backend.dequeue()) is not None
                await backend.aclose()
            assert _open_fds() == before_fds
            assert await _server_stat(redis_server, "clients", "connected_clients") == before_clients
            gc.collect()  # whatever was left unclosed warns now
    finally:
        gc.enable()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


async def test_tls_against_a_plain_text_server_fails_once_with_a_hint(redis_server: RedisServer) -> None:
    before = await _server_stat(redis_server, "stats", "total_connections_received")
    config = BackendConfig(
        type="redis-lists",
        url=f"rediss://127.0.0.1:{redis_server.port}/0",
        queue="q",
        options={"conn_timeout": 0.5, "max_retries": 3, "tls_verify": False},
    )
    with pytest.raises(ConnectionFailedError) as info:
        await RedisListsFactory().create(config)
    assert "TLS" in str(info.value)
    assert "redis://" in str(info.value)
    after = await _server_stat(redis_server, "stats", "total_connections_received")
    assert after - before == 2  # one TLS attempt (not retried) and our own INFO connection


async def test_url_query_options_and_redis_py_names_reach_the_real_client(redis_server: RedisServer) -> None:
    url = f"valkey://127.0.0.1:{redis_server.port}/3?socket_timeout=2.5&socket_connect_timeout=4&max_connections=3"
    config = BackendConfig(type="redis-lists", url=url, queue="urlq", options={"health_check_interval": 12})
    backend = await RedisListsFactory().create(config)
    try:
        await backend.enqueue(Job(id="u1", payload={}))
        pool = backend.conn.client.connection_pool  # type: ignore[attr-defined]
        kw = pool.connection_kwargs
        assert (kw["db"], kw["socket_timeout"], kw["socket_connect_timeout"]) == (3, 2.5, 4.0)
        assert (pool.max_connections, kw["health_check_interval"]) == (3, 12.0)
        raw = aredis.Redis(host="127.0.0.1", port=redis_server.port, db=3)
        try:
            assert await raw.dbsize() > 0  # the job landed in database 3
        finally:
            await raw.aclose()
    finally:
        await backend.aclose()


async def test_unix_socket_url_with_db(redis_server_factory: Any, tmp_path: Path) -> None:
    sock = tmp_path / "r.sock"
    server = redis_server_factory(extra_args=["--unixsocket", str(sock), "--unixsocketperm", "700"])
    config = BackendConfig(type="redis-lists", url=f"unix://{sock}?db=5", queue="sockq")
    backend = await RedisListsFactory().create(config)
    try:
        await backend.enqueue(Job(id="s1", payload={}))
        assert await backend.length() == 1
        in_db5 = aredis.Redis(host="127.0.0.1", port=server.port, db=5)
        in_db0 = aredis.Redis(host="127.0.0.1", port=server.port, db=0)
        try:
            assert await in_db5.dbsize() > 0
            assert await in_db0.dbsize() == 0
        finally:
            await in_db5.aclose()
            await in_db0.aclose()
    finally:
        await backend.aclose()


def test_a_redis_backend_under_trio_fails_at_once_and_memory_works() -> None:
    pytest.importorskip("trio", reason="trio is not installed (nox -s tests installs it)")
    import anyio

    import queuestore as qs
    from queuestore.errors import UnsupportedOperationError

    async def main() -> None:
        async with await qs.default_registry().create(
            "memory", BackendConfig(type="memory", name="m", queue="q")
        ) as memory:
            await memory.enqueue(Job(id="t1", payload={}))
            assert await memory.length() == 1
        with pytest.raises(UnsupportedOperationError, match=r"run on asyncio .*under trio use"):
            await RedisListsFactory().create(
                BackendConfig(type="redis-lists", name="r", queue="q", url=f"redis://127.0.0.1:{free_port()}")
            )

    anyio.run(main, backend="trio")

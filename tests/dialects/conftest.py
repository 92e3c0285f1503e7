"""Fixtures of the dialect tests: backends made through the registry on real servers, and
recorded INFO of the servers that are not installed here (KeyDB, Dragonfly, Valkey).

The recorded INFO is the identity part of each server's ``INFO server`` text (the fields
``classify_info`` reads; see docs/server-compat.md's table), as those servers print it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
import pytest
import redis.asyncio as aredis

from queuestore import BackendConfig, default_registry
from queuestore.backends._redis import base as base_module
from queuestore.backends._redis.base import RedisBackendBase
from queuestore.backends._redis.probe import (
    ServerInfo,
    classify_info,
    parse_info_text,
    probe_server,
    script_header_for,
)

Maker = Callable[..., Awaitable[Any]]

RECORDED_INFO: dict[str, str] = {
    "keydb": (
        "# Server\r\nredis_version:6.3.4\r\nredis_git_sha1:7e7e5e57\r\nredis_mode:standalone\r\n"
        "os:Linux 6.1.0 x86_64\r\narch_bits:64\r\nmultiplexing_api:epoll\r\n"
        "executable:/usr/bin/keydb-server\r\nconfig_file:/etc/keydb/keydb.conf\r\n\r\n"
        "# KeyDB\r\nmvcc_depth:0\r\n"
    ),
    "dragonfly": (
        "# Server\r\nredis_version:7.4.0\r\ndragonfly_version:df-v1.25.2\r\nredis_mode:standalone\r\n"
        "arch_bits:64\r\nmultiplexing_api:epoll\r\nthread_count:2\r\nexecutable:dragonfly\r\n"
    ),
    "valkey": (
        "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n"
        "redis_mode:standalone\r\nexecutable:/usr/bin/valkey-server\r\n"
    ),
    "redis6": "# Server\r\nredis_version:6.2.14\r\nredis_mode:standalone\r\n",
}


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}"


def config(backend_type: str, url: str, queue: str | None = None, **options: Any) -> BackendConfig:
    """A config of ``backend_type`` on ``url`` with a unique key prefix unless given."""
    opts = {"key_prefix": unique("qs-dia") + ":", **options}
    return BackendConfig(
        type=backend_type, name=f"dialect-{backend_type}", url=url, queue=queue or unique("q"), options=opts
    )


@pytest.fixture
async def make() -> AsyncIterator[Maker]:
    """``await make(type, url, queue=None, **options)``: an open backend (closed after the test)."""
    made: list[Any] = []

    async def _make(backend_type: str, url: str, queue: str | None = None, **options: Any) -> Any:
        backend = await default_registry().create(backend_type, config(backend_type, url, queue, **options))
        made.append(backend)
        return backend

    try:
        yield _make
    finally:
        for b in made:
            await b.aclose()


async def probed(url: str) -> ServerInfo:
    """What the (real, unposed) probe finds on the server at ``url``."""
    client = aredis.Redis.from_url(url)
    try:
        return await probe_server(client)
    finally:
        await client.aclose()


def posing_as(kind: str) -> Callable[[Any], Awaitable[ServerInfo]]:
    """A probe that asks the real server, then reports the identity of a recorded INFO
    (what the probe would find on that server): kind, version and script header.
    ``"real"``: the server's own identity, unchanged."""

    async def probe(client: Any) -> ServerInfo:
        real = await probe_server(client)
        if kind == "real":
            return real
        k, version = classify_info(parse_info_text(RECORDED_INFO[kind]))
        return msgspec.structs.replace(
            real, kind=k, version=version, script_header=script_header_for(k, version)
        )

    return probe


@pytest.fixture
def pose(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``pose("keydb")``: backends opened afterwards see the recorded server's identity."""

    def _pose(kind: str) -> None:
        monkeypatch.setattr(base_module, "probe_server", posing_as(kind))

    return _pose


def is_redis_backend(backend: Any) -> RedisBackendBase:
    assert isinstance(backend, RedisBackendBase)
    return backend

"""Server identification and probing: real INFO from redis-server, recorded INFO of the others;
the script header each one gets, and that every header's scripts compile on redis-server."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aredis
from redis.exceptions import ResponseError

from queuestore.backends._redis.probe import classify_info, parse_info_text, probe_server, script_header_for
from queuestore.backends._redis.scripts import ScriptHeader, ScriptSet, lua_folder
from queuestore.backends.redis_lists import RedisListsBackend
from queuestore.backends.redis_streams import RedisStreamsBackend
from tests.servers import RedisServer

from .conftest import RECORDED_INFO, Maker, is_redis_backend

SELFTEST = lua_folder("queuestore.backends._redis").joinpath("selftest")

pytestmark = pytest.mark.anyio

GROUPS = (
    (RedisListsBackend.lua_folder, RedisListsBackend.script_names, RedisListsBackend.lua_preamble),
    (RedisStreamsBackend.lua_folder, RedisStreamsBackend.script_names, RedisStreamsBackend.lua_preamble),
)


@pytest.mark.parametrize(
    ("name", "kind", "version", "header"),
    [
        ("keydb", "keydb", "6.3.4", ScriptHeader.NONE),
        ("dragonfly", "dragonfly", "1.25.2", ScriptHeader.DRAGONFLY),
        ("valkey", "valkey", "8.0.1", ScriptHeader.REDIS7),
        ("redis6", "redis", "6.2.14", ScriptHeader.NONE),
    ],
)
def test_recorded_info_gives_kind_and_header(
    name: str, kind: str, version: str, header: ScriptHeader
) -> None:
    info = parse_info_text(RECORDED_INFO[name])
    assert classify_info(info) == (kind, version)
    assert script_header_for(kind, version) is header


async def test_real_info_and_probe_of_redis_server(redis_server: RedisServer) -> None:
    raw = redis_server.sync_client()
    raw.set_response_callback("INFO", lambda reply, **_: reply)  # the text, as a server sends it
    text = raw.execute_command("INFO", "server")
    text = text.decode() if isinstance(text, bytes) else str(text)
    assert "redis_version:" in text
    kind, version = classify_info(parse_info_text(text))
    assert (kind, version[:2]) == ("redis", "7.")
    client = aredis.Redis.from_url(redis_server.url)
    try:
        info = await probe_server(client)
    finally:
        await client.aclose()
    assert (info.kind, info.version) == (kind, version)
    assert info.script_header is ScriptHeader.REDIS7
    assert info.has_xautoclaim
    assert info.xautoclaim_shape == 3  # observed: deleted ids come back in a third element
    assert info.has_xinfo_lag is True
    assert info.has_wait
    assert info.has_client_no_evict
    assert info.has_waitaof is (tuple(int(x) for x in version.split(".")[:2]) >= (7, 2))
    assert not redis_server.sync_client().keys("queuestore:probe:*"), "the probe left its key behind"


@pytest.mark.parametrize("header", list(ScriptHeader))
async def test_every_header_compiles_on_redis_server(redis_server: RedisServer, header: ScriptHeader) -> None:
    """SCRIPT LOAD compiles each body; the header of each kind is what the server kind needs."""
    client = aredis.Redis.from_url(redis_server.url)
    try:
        for group, names, preamble in GROUPS:
            for strict in (False, True):
                scripts = ScriptSet(group, names, header, strict_keys=strict, preamble=preamble)
                assert scripts.header is header
                await scripts.load(client)
                for script in scripts.scripts.values():
                    assert script.body.startswith("#!lua") is (header is ScriptHeader.REDIS7)
                    assert await client.script_exists(script.sha) == [True]
    finally:
        await client.aclose()


async def test_dragonfly_df_header_is_a_comment_for_redis(redis_server: RedisServer) -> None:
    """Dragonfly's ``--!df flags=`` line is a Lua comment elsewhere: a body carrying it compiles
    and runs on redis-server (so scripts with it stay portable)."""
    client = aredis.Redis.from_url(redis_server.url)
    try:
        scripts = ScriptSet(SELFTEST, ["touch"], ScriptHeader.DRAGONFLY, strict_keys=True)
        body = "--!df flags=allow-cross-slot-keys\n" + scripts.scripts["touch"].body
        key = f"qs-dia-df:{{{uuid.uuid4().hex}}}"
        assert await client.eval(body, 1, key) == b"1"  # compiled and ran
        with pytest.raises(ResponseError, match="STRICTKEYS"):
            await client.eval(body, 1, key, "undeclared")  # the strict-keys checker is in force
        await client.delete(key)
    finally:
        await client.aclose()


async def test_probe_is_cached_per_connection(make: Maker, redis_server: RedisServer) -> None:
    one = is_redis_backend(await make("keydb", redis_server.url, key_prefix="shared-probe:"))
    two = is_redis_backend(await make("keydb", redis_server.url, key_prefix="shared-probe:"))
    assert one.conn is two.conn
    assert one.server is two.server  # the second open did not probe again

"""Server identification and probing: real INFO from redis-server, recorded INFO of the others;
the script header each one gets, and that every header's scripts compile on redis-server."""

from __future__ import annotations

import re
import subprocess
import uuid

import pytest
import redis
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


def binary_identity(server: RedisServer) -> tuple[str, str]:
    """``(kind, version)`` from the binary's own ``--version`` line, e.g. ``Valkey server v=9.1.2``."""
    out = subprocess.run([server.binary, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.match(r"(\w+) server v=(\S+)", out)
    assert match, out
    return match.group(1).lower(), match.group(2)


def tried(client: redis.Redis, *command: object) -> bool:
    """Whether the server runs ``command`` (False: refused as unknown, or for its arguments)."""
    try:
        client.execute_command(*command)  # type: ignore[no-untyped-call]
    except ResponseError:
        return False
    return True


def observed_stream_facts(client: redis.Redis) -> tuple[int, bool]:
    """XAUTOCLAIM's reply length for a pending entry deleted from the stream, and whether
    XINFO GROUPS reports ``lag``, observed with plain commands (not the probe's script)."""
    key = f"qs-dia-probe:{{{uuid.uuid4().hex}}}"
    try:
        entry = client.xadd(key, {"f": "v"})
        client.xgroup_create(key, "g", "0")
        client.xreadgroup("g", "c", {key: ">"})
        groups = client.execute_command("XINFO", "GROUPS", key)  # type: ignore[no-untyped-call]
        fields = groups[0] if isinstance(groups[0], list) else list(groups[0])
        client.xdel(key, entry)
        reply = client.execute_command("XAUTOCLAIM", key, "g", "c", 0, "0-0")  # type: ignore[no-untyped-call]
        return len(reply), b"lag" in fields or "lag" in fields
    finally:
        client.delete(key)


async def test_real_info_and_probe_of_the_server(redis_server: RedisServer) -> None:
    """The probe's answers are the server's: kind and version as its binary names them, and each
    feature as found by trying it -- both branches across the servers CI runs (WAITAOF on
    Valkey 9.1, not on Redis 7.0 or KeyDB; CLIENT NO-EVICT not on KeyDB; KeyDB's 2-element
    XAUTOCLAIM reply and no XINFO ``lag``)."""
    raw = redis_server.sync_client()
    raw.set_response_callback("INFO", lambda reply, **_: reply)  # the text, as a server sends it
    text = raw.execute_command("INFO", "everything")  # what the probe reads (KeyDB: its # KeyDB section)
    text = text.decode() if isinstance(text, bytes) else str(text)
    assert "redis_version:" in text
    kind, version = classify_info(parse_info_text(text))
    assert (kind, version) == binary_identity(redis_server)
    client = aredis.Redis.from_url(redis_server.url)
    try:
        info = await probe_server(client)
    finally:
        await client.aclose()
    assert (info.kind, info.version) == (kind, version)
    assert info.script_header is script_header_for(kind, version)
    plain = redis_server.sync_client()
    assert info.has_xautoclaim  # every server CI runs has it (observed_stream_facts calls it)
    assert (info.xautoclaim_shape, info.has_xinfo_lag) == observed_stream_facts(plain)
    assert info.has_wait is tried(plain, "WAIT", 0, 0)
    assert info.has_waitaof is tried(plain, "WAITAOF", 0, 0, 0)
    assert info.has_client_no_evict is tried(plain, "CLIENT", "NO-EVICT", "off")
    assert not plain.keys("queuestore:probe:*"), "the probe left its key behind"


@pytest.mark.parametrize("header", list(ScriptHeader))
async def test_every_header_compiles_where_the_probe_allows_it(
    redis_server: RedisServer, header: ScriptHeader
) -> None:
    """SCRIPT LOAD compiles each body with the header the probe picks for the server, and with
    the comment-only ones (none, Dragonfly's); ``#!lua flags=`` is refused where the probe
    does not pick it (KeyDB, Redis 6): that is why it must not be sent there."""
    client = aredis.Redis.from_url(redis_server.url)
    try:
        picked = (await probe_server(client)).script_header
        for group, names, preamble in GROUPS:
            for strict in (False, True):
                scripts = ScriptSet(group, names, header, strict_keys=strict, preamble=preamble)
                assert scripts.header is header
                if header is ScriptHeader.REDIS7 and picked is not ScriptHeader.REDIS7:
                    with pytest.raises(ResponseError):
                        await scripts.load(client)
                    continue
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

"""ScriptSet on real servers: NOSCRIPT recovery (standalone, cluster, pipelines), the strict-keys
prelude, headers per server kind, and no direct redis.call outside the preludes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis.asyncio as aredis
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.cluster import RedisCluster as AsyncCluster
from redis.exceptions import ResponseError

from queuestore.backends._redis.connection import RedisClient
from queuestore.backends._redis.probe import probe_server
from queuestore.backends._redis.scripts import ScriptCall, ScriptHeader, ScriptSet, lua_folder
from tests.servers import RedisCluster, RedisServer

SELFTEST = lua_folder("queuestore.backends._redis").joinpath("selftest")
LISTS = lua_folder("queuestore.backends.redis_lists")

pytestmark = pytest.mark.anyio
LUA = Path(__file__).resolve().parents[2] / "queuestore" / "backends" / "_redis" / "lua"


async def header_of(client: RedisClient) -> ScriptHeader:
    """The script header the connected server takes, as the backends probe it (``#!lua`` on
    Redis / Valkey 7+, none on KeyDB...): these tests run on every server binary."""
    return (await probe_server(client)).script_header


def test_no_script_calls_redis_directly() -> None:
    direct = re.compile(r"\bredis\.p?call\b")
    offenders = [
        str(p.relative_to(LUA))
        for p in LUA.rglob("*.lua")
        if p.name not in ("_prelude.lua", "_prelude_strict.lua") and direct.search(p.read_text())
    ]
    assert not offenders, f"scripts must call redis through rcall: {offenders}"


def test_headers_and_group_library() -> None:
    r7 = ScriptSet(LISTS, ["page", "ack"], ScriptHeader.REDIS7)
    assert r7.scripts["page"].body.startswith("#!lua flags=no-writes\n")
    assert r7.scripts["ack"].body.startswith("#!lua\n")
    none = ScriptSet(LISTS, ["page", "ack"], ScriptHeader.NONE)
    assert not none.scripts["page"].body.startswith("#!")
    # the group's library goes with its scripts, as far as each script reaches into it
    assert "local function recalled" in none.scripts["ack"].body
    assert "local function recalled" not in none.scripts["page"].body
    assert none.scripts["page"].sha != r7.scripts["page"].sha
    assert (
        "local function recalled"
        not in ScriptSet(SELFTEST, ["touch"], ScriptHeader.NONE).scripts["touch"].body
    )


async def test_noscript_recovery_standalone_and_in_pipelines(redis_server: RedisServer) -> None:
    client = aredis.Redis.from_url(redis_server.url)
    try:
        header = await header_of(client)
        scripts = ScriptSet(SELFTEST, ["touch"], header)
        await scripts.load(client)
        await client.script_flush()
        assert int(await scripts.run(client, "touch", ["pl:a"], [])) >= 1
        await client.script_flush()
        calls = [ScriptCall("touch", [f"pl:{i}"], []) for i in range(5)]
        assert [int(x) for x in await scripts.run_many(client, calls)] == [1] * 5
        assert scripts.reloads == 2
        assert scripts.calls["touch"] == 6
    finally:
        await client.aclose()


async def test_noscript_recovery_on_a_cluster(redis_cluster: RedisCluster) -> None:
    client = AsyncCluster(startup_nodes=[ClusterNode(n.host, n.port) for n in redis_cluster.nodes])
    try:
        await client.initialize()
        header = await header_of(client)
        scripts = ScriptSet(SELFTEST, ["touch"], header)
        await scripts.load(client)
        for node in redis_cluster.nodes:
            node.sync_client().script_flush()
        keys = [f"{{t{i}}}:k" for i in range(12)]  # spread over every node
        assert int(await scripts.run(client, "touch", [keys[0]], [])) == 1
        out = await scripts.run_many(client, [ScriptCall("touch", [k], []) for k in keys])
        assert [int(x) for x in out] == [2] + [1] * 11
        assert scripts.reloads == 2
    finally:
        await client.aclose()


async def test_strict_keys_refuses_an_undeclared_key(redis_server: RedisServer) -> None:
    client = aredis.Redis.from_url(redis_server.url)
    try:
        header = await header_of(client)
        strict = ScriptSet(SELFTEST, ["touch"], header, strict_keys=True)
        assert int(await strict.run(client, "touch", ["sk:a"], [])) == 1
        with pytest.raises(ResponseError, match="STRICTKEYS undeclared key sk:b"):
            await strict.run(client, "touch", ["sk:a"], ["sk:b"])
        assert await client.get("sk:b") is None  # refused before the undeclared write
        lax = ScriptSet(SELFTEST, ["touch"], header)
        # 3: the refused run had already written KEYS[1] (scripts are not rolled back)
        assert int(await lax.run(client, "touch", ["sk:a"], ["sk:b"])) == 3
        assert await client.get("sk:b") == b"1"  # without the checker the undeclared write happens
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("package", "allowed"),
    [("redis_lists", set()), ("redis_streams", {"server_ms"})],
    ids=["lists", "streams"],
)
def test_the_lone_enqueue_script_makes_no_closure_of_the_library(package: str, allowed: set[str]) -> None:
    # Redis runs a script's top level on every call: each library function it names is a closure
    # made and collected per call, the largest share of a lone enqueue's server work after its
    # commands (docs/benchmarks.md, "A cheaper lone call")
    from queuestore.backends.redis_lists.layout import LUA_PREAMBLE

    folder = lua_folder(f"queuestore.backends.{package}")
    preamble = LUA_PREAMBLE if package == "redis_lists" else ""
    scripts = ScriptSet(folder, ["enqueue_one"], ScriptHeader.REDIS7, preamble=preamble)
    body = scripts.scripts["enqueue_one"].body
    assert set(re.findall(r"^local function (\w+)", body, re.M)) == allowed
    assert not re.search(r"^local \w+ = \{", body, re.M)  # nor a table of the library's

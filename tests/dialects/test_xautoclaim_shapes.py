"""Both XAUTOCLAIM reply shapes through the real parser (``parse_autoclaim`` in
``redis_streams/lua/take.lua``, reached by its ``parse`` mode), in every dialect header.

The running server's reply is captured (an entry deleted while pending) and must have the
shape the probe found: three elements on Redis 7 / Valkey (deleted ids listed), two on KeyDB
(nil in place of the deleted entry). The other shape is recorded.
The same parser is covered for the default dialect by
``tests/redis_streams/test_scripts.py::test_xautoclaim_parser_takes_both_reply_shapes``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from queuestore.backends.redis_streams import RedisStreamsBackend
from tests.servers import RedisServer

from .conftest import Maker, probed
from .test_strict_dialects import POSES, _parse, expected

pytestmark = pytest.mark.anyio

CAPTURE = """
return cjson.encode(redis.call("XAUTOCLAIM", KEYS[1], "g", "c2", 0, "0-0"))
"""


def real_reply(server: RedisServer) -> tuple[Any, list[str]]:
    """XAUTOCLAIM's reply, as Lua sees it, for 3 pending entries of which the middle one was deleted."""
    r = server.sync_client()
    key = f"qs-dia-xac:{{{uuid.uuid4().hex}}}"
    ids = [r.xadd(key, {"j": f"job{i}"}).decode() for i in range(3)]
    r.xgroup_create(key, "g", "0")
    r.xreadgroup("g", "c1", {key: ">"})
    r.xdel(key, ids[1])
    reply = json.loads(r.eval(CAPTURE, 1, key))
    r.delete(key)
    return reply, ids


def redis_shape(ids: list[str]) -> list[Any]:
    return ["0-0", [[ids[0], ["j", "job0"]], [ids[2], ["j", "job2"]]], [ids[1]]]


def keydb_shape(ids: list[str]) -> list[Any]:
    return ["0-0", [[ids[0], ["j", "job0"]], False, [ids[2], ["j", "job2"]]]]


@pytest.mark.parametrize(("pose_kind", "header"), POSES)
async def test_both_reply_shapes_parse_in_every_dialect(
    make: Maker, pose: Any, redis_server: RedisServer, pose_kind: str, header: Any
) -> None:
    pose(pose_kind)
    header, _ = await expected(pose_kind, header, redis_server)
    backend = await make("dragonfly", redis_server.url, layout="streams", strict_keys=True)
    assert isinstance(backend, RedisStreamsBackend)
    assert backend.script_set.header is header
    real, ids = real_reply(redis_server)
    assert len(real) == (await probed(redis_server.url)).xautoclaim_shape, real
    live = [ids[0].encode(), ids[2].encode()]
    if len(real) == 3:  # Redis 7 / Valkey: cursor, live entries, deleted ids
        assert real[2] == [ids[1]]
        assert real == redis_shape(ids)
    else:  # KeyDB: the deleted entry is a nil (false in Lua) among the live ones
        assert real == keydb_shape(ids)
    for reply in (real, redis_shape(ids), keydb_shape(ids)):
        got = await _parse(backend, reply)
        if len(reply) == 3:
            assert got == [b"0-0", live, [ids[1].encode()], 0]
        else:
            assert got == [b"0-0", live, [], 1]  # the hole is counted

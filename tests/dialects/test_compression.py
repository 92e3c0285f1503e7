"""Compression on a real server: the dragonfly type compresses by default (zlib, from
``compression_threshold`` bytes, marker ``\\x00qz1``); entries written with and without it sit
side by side in one queue and every reader decodes both, whatever its own setting."""

from __future__ import annotations

from typing import Any

import pytest

from queuestore import DequeueOptions, Job
from tests.servers import RedisServer

from .conftest import Maker, unique

pytestmark = pytest.mark.anyio

MARKER = b"\x00qz1"
BIG = {"text": "lorem ipsum dolor sit amet " * 200}  # ~5 KB, compresses well


def stored_bodies(server: RedisServer, backend: Any) -> dict[str, bytes]:
    """Job id -> the body bytes as stored on the server (lists hash or stream entries)."""
    r = server.sync_client()
    if hasattr(backend, "lists_options"):
        return {k.decode(): v for k, v in r.hgetall(backend.keys.key("jobs")).items()}
    return {f[b"j"].decode(): f[b"b"] for _, f in r.xrange(backend.skeys.stream)}


@pytest.mark.parametrize("layout", ["lists", "streams"])
async def test_mixed_entries_decode_both_ways(make: Maker, redis_server: RedisServer, layout: str) -> None:
    prefix, queue = unique("qs-dia-z") + ":", unique("q")
    plain = await make("keydb", redis_server.url, queue, key_prefix=prefix, layout=layout)
    packed = await make("dragonfly", redis_server.url, queue, key_prefix=prefix, layout=layout)
    assert not plain.options.compression
    assert packed.options.compression  # the dragonfly default
    old, new, small = Job(id="old", payload=BIG), Job(id="new", payload=BIG), Job(id="small", payload="x")
    assert await plain.enqueue(old)
    assert await packed.enqueue_many([new, small])
    bodies = stored_bodies(redis_server, packed)
    assert not bodies["old"].startswith(MARKER)
    assert bodies["new"].startswith(MARKER)
    assert len(bodies["new"]) * 5 < len(bodies["old"])  # really compressed
    assert not bodies["small"].startswith(MARKER)  # under the threshold: stored as it is
    # each reader decodes every entry
    peeked = [j async for j in plain.iter()]
    assert {j.id: j.payload for j in peeked} == {"old": BIG, "new": BIG, "small": "x"}
    got = await packed.dequeue_many(DequeueOptions(count=3))
    assert {j.id: j.payload for j in got} == {"old": BIG, "new": BIG, "small": "x"}
    assert await packed.ack_many(got) == [True, True, True]

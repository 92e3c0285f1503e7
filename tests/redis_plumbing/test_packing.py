"""The backends' RESP packing sends what redis-py's own packing sends, and declines the rest."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aredis
from redis.exceptions import DataError

from queuestore import BackendConfig, DequeueOptions, Job, default_registry
from queuestore.backends._redis import packing
from queuestore.backends._redis.packing import PackedConnection, PackingMixin, pack_fast
from tests.servers import RedisCluster

CASES: list[tuple[Any, ...]] = [
    ("PING",),
    ("EVALSHA", "a" * 40, 3, "q:{x}:jobs", "q:{x}:meta", "q:{x}:ready:9", "enqueue", 86400.0, "0f" * 8),
    ("SET", "k", b"\x00\r\n\xff binary", 0, -7, 1.5, 1e20, float("inf"), ""),
    ("HSET", "caf\u00e9", "\u2603" * 10, b""),
    ("SET", "k", b"x" * 5999),
    ("EVALSHA", "b" * 40, 2, "q:{x}:a", "q:{x}:b", "acks", *(f"g\x1f1-{i}\x1fj\u00e9{i}" for i in range(99))),
    ("RPUSH", "k", *(f"v{i}" for i in range(50)), b"\x00\r\n", 7, 2.5, "\u2603" * 200),
    # past the head: ASCII strings packed together; a long one, a number, bytes, a non-ASCII
    # string or an empty one among them
    ("EVALSHA", "c" * 40, 1, "q:{x}:a", *(f"1764604925123-{i}" for i in range(100)), ""),
    ("RPUSH", "k", *(f"v{i}" for i in range(60)), "z" * 127),
    ("RPUSH", "k", *(f"v{i}" for i in range(60)), "z" * 128),
    ("RPUSH", "k", *(f"v{i}" for i in range(60)), "z" * 5999),
    ("RPUSH", "k", *(f"v{i}" for i in range(60)), 12),
    ("RPUSH", "k", *(f"v{i}" for i in range(60)), b"bytes"),
    ("RPUSH", "k", *(f"v{i}" for i in range(60)), "caf\u00e9"),
]
DECLINED: list[tuple[Any, ...]] = [
    ("CONFIG GET", "maxmemory"),  # a command name redis-py splits
    (b"PING",),
    ("SET", "k", b"x" * 6001),  # redis-py sends large values as chunks of their own
    ("SET", "k", "y" * 6001),
    ("SET", "k", bytearray(b"v")),
    ("SET", "k", memoryview(b"v")),
    ("RPUSH", "k", *(f"v{i}" for i in range(60)), bytearray(b"v")),  # past the cached head too
    ("RPUSH", "k", *(f"v{i}" for i in range(60)), "z" * 6001),
]


@pytest.mark.parametrize("args", CASES)
def test_same_bytes_as_redis_py(args: tuple[Any, ...]) -> None:
    expected = b"".join(bytes(c) for c in aredis.Connection().pack_command(*args))
    assert pack_fast(args) == expected
    assert b"".join(PackedConnection().pack_command(*args)) == expected
    assert pack_fast(args) == expected  # the second time from the cache of packed strings


@pytest.mark.parametrize("args", DECLINED)
def test_declined_goes_to_redis_py(args: tuple[Any, ...]) -> None:
    assert pack_fast(args) is None
    expected = b"".join(bytes(c) for c in aredis.Connection().pack_command(*args))
    assert b"".join(bytes(c) for c in PackedConnection().pack_command(*args)) == expected


def test_bool_refused_as_redis_py_does() -> None:
    assert pack_fast(("SET", "k", True)) is None
    with pytest.raises(DataError):
        PackedConnection().pack_command("SET", "k", True)


@pytest.mark.anyio
@pytest.mark.cluster
async def test_cluster_connections_pack_too(redis_cluster: RedisCluster) -> None:
    addrs = [f"{n.host}:{n.port}" for n in redis_cluster.nodes]
    config = BackendConfig(
        type="redis-lists", name="packing", queue="packed", cluster_mode=True, cluster_addrs=addrs,
        options={"key_prefix": "qs-packing:"},
    )  # fmt: skip
    backend = await default_registry().factory("redis-lists").create(config)
    try:
        jobs = [Job(payload={"n": i, "text": "caf\u00e9"}) for i in range(5)]
        assert await backend.enqueue_many(jobs) == [True] * 5
        got = await backend.dequeue_many(DequeueOptions(count=5))
        assert [j.payload for j in got] == [j.payload for j in jobs]
        assert await backend.ack_many(got) == [True] * 5
        client = backend.conn.client  # type: ignore[attr-defined]
        nodes = client.get_nodes()
        assert len(nodes) == len(addrs)
        assert all(issubclass(n.connection_class, PackingMixin) for n in nodes)
    finally:
        await backend.aclose()


def test_only_the_head_of_a_command_is_kept_packed() -> None:
    """The name, digest and keys of a script call repeat; a batch's per-job ids and entry ids
    never do, and keeping them would evict the keys (past the head, ASCII strings are packed
    together and none is kept)."""
    packing._PACKED.clear()  # a cache filled by earlier tests would clear itself mid-command
    ids = [f"{i:032x}" for i in range(200)]
    entry_ids = [f"1764604925123-{i}" for i in range(100)]
    args = ("EVALSHA", "c" * 40, 1, "q:{head}:k", *ids, *entry_ids, "short", "1")
    assert pack_fast(args) is not None
    assert "q:{head}:k" in packing._PACKED
    assert ids[10] in packing._PACKED  # within the head
    assert not any(i in packing._PACKED for i in ids[60:])
    assert not any(i in packing._PACKED for i in entry_ids)
    assert "short" not in packing._PACKED
    assert "1" not in packing._PACKED


def test_past_the_head_short_fields_of_a_mixed_tail_are_kept() -> None:
    """A tail that is not all ASCII strings is packed one by one, keeping its short fields."""
    packing._PACKED.clear()
    args = ("EVALSHA", "d" * 40, 1, "q:{head}:k", *(f"{i:032x}" for i in range(60)), "short", "1", 7)
    assert pack_fast(args) is not None
    assert "short" in packing._PACKED
    assert "1" in packing._PACKED

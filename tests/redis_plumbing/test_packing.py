"""The backends' RESP packing sends what redis-py's own packing sends, and declines the rest."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

import pytest
import redis.asyncio as aredis
from redis.exceptions import DataError

from queuestore import BackendConfig, DequeueOptions, Job, JobState, default_registry
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
    ("SET", "k", b"x" * 6001),  # redis-py sends large values as chunks of their own: the same bytes
    ("SET", "k", "y" * 100_000),
    ("SET", "k", memoryview(b"v")),
    ("HSET", "k", "state", JobState.READY),  # a str subclass is its value
    ("EVALSHA", "e" * 40, 1, "q:{x}:a", *(f"{i:032x}" for i in range(1000)), b"\x00" * 300, 2**70, -3),
]
DECLINED: list[tuple[Any, ...]] = [
    ("CONFIG GET", "maxmemory"),  # a command name redis-py splits
    (b"PING",),
    ("SET", "k", bytearray(b"v")),
    ("SET", "k", IntEnum("Level", "LOW HIGH").HIGH),  # redis-py packs its repr
    ("RPUSH", "k", *(f"v{i}" for i in range(60)), bytearray(b"v")),
]


@pytest.mark.parametrize("args", CASES)
def test_same_bytes_as_redis_py(args: tuple[Any, ...]) -> None:
    expected = b"".join(bytes(c) for c in aredis.Connection().pack_command(*args))
    assert pack_fast(args) == expected
    assert b"".join(PackedConnection().pack_command(*args)) == expected


@pytest.mark.parametrize("args", DECLINED)
def test_declined_goes_to_redis_py(args: tuple[Any, ...]) -> None:
    """Packed as redis-py packs it, or refused as redis-py refuses it (redis-py before 8.0
    refuses a bytearray: seen on 5.0.1 to 7.2.0)."""
    assert pack_fast(args) is None
    try:
        expected = b"".join(bytes(c) for c in aredis.Connection().pack_command(*args))
    except DataError:
        with pytest.raises(DataError):
            PackedConnection().pack_command(*args)
        return
    assert b"".join(bytes(c) for c in PackedConnection().pack_command(*args)) == expected


@pytest.mark.parametrize("value", [True, None])
def test_bool_and_none_refused_as_redis_py_does(value: object) -> None:
    assert pack_fast(("SET", "k", value)) is None
    with pytest.raises(DataError):
        PackedConnection().pack_command("SET", "k", value)


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


def test_a_lone_surrogate_is_refused_as_redis_py_refuses_it() -> None:
    with pytest.raises(UnicodeEncodeError):
        aredis.Connection().pack_command("SET", "k", "\ud800")
    with pytest.raises(UnicodeEncodeError):
        pack_fast(("SET", "k", "\ud800"))


@pytest.mark.parametrize("args", CASES[:4])
def test_without_a_hiredis_packer_redis_py_packs(
    monkeypatch: pytest.MonkeyPatch, args: tuple[Any, ...]
) -> None:
    """A hiredis without a packer (or none at all): every command goes to redis-py's packing."""
    monkeypatch.setattr(packing, "_PACK", None)
    assert pack_fast(args) is None
    expected = b"".join(bytes(c) for c in aredis.Connection().pack_command(*args))
    assert b"".join(bytes(c) for c in PackedConnection().pack_command(*args)) == expected

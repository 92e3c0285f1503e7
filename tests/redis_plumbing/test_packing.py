"""The backends' RESP packing sends what redis-py's own packing sends, and declines the rest."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aredis
from redis.exceptions import DataError

from queuestore.backends._redis.packing import PackedConnection, pack_fast

CASES: list[tuple[Any, ...]] = [
    ("PING",),
    ("EVALSHA", "a" * 40, 3, "q:{x}:jobs", "q:{x}:meta", "q:{x}:ready:9", "enqueue", 86400.0, "0f" * 8),
    ("SET", "k", b"\x00\r\n\xff binary", 0, -7, 1.5, 1e20, float("inf"), ""),
    ("HSET", "caf\u00e9", "\u2603" * 10, b""),
    ("SET", "k", b"x" * 5999),
]
DECLINED: list[tuple[Any, ...]] = [
    ("CONFIG GET", "maxmemory"),  # a command name redis-py splits
    (b"PING",),
    ("SET", "k", b"x" * 6001),  # redis-py sends large values as chunks of their own
    ("SET", "k", "y" * 6001),
    ("SET", "k", bytearray(b"v")),
    ("SET", "k", memoryview(b"v")),
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

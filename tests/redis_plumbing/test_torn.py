"""A connection closed under a call is a redis-py ConnectionError (a lost reply the backends
retry by call id), not the transport's AttributeError; other errors pass through."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError

from queuestore.backends._redis.packing import PackedConnection, PackedUnixConnection
from queuestore.backends._redis.tls import TLSConnection
from queuestore.backends._redis.torn import TornConnectionMixin, torn_connection
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def conn(redis_server: RedisServer) -> AsyncIterator[PackedConnection]:
    c = PackedConnection(host=redis_server.host, port=redis_server.port, socket_timeout=2.0)
    await c.connect()
    yield c
    await c.disconnect()


def close_between_check_and_write(c: aredis.Connection) -> None:
    """Another task closes the connection after the call found it connected, before it writes
    (what redis-py's cluster client does to a node's connections when one of them breaks)."""

    async def closed_meanwhile() -> None:
        await aredis.Connection.disconnect(c)

    c.check_health = closed_meanwhile  # type: ignore[method-assign]


async def test_a_connection_closed_under_a_write_raises_a_connection_error(conn: PackedConnection) -> None:
    close_between_check_and_write(conn)
    with pytest.raises(RedisConnectionError, match="closed while a command was written") as info:
        await conn.send_packed_command(conn.pack_command("PING"))
    assert isinstance(info.value.__cause__, AttributeError)
    assert torn_connection(info.value.__cause__)


async def test_redis_py_alone_lets_the_transports_error_escape(redis_server: RedisServer) -> None:
    """Why the mixin is there: the same sequence on redis-py's own connection."""
    plain = aredis.Connection(host=redis_server.host, port=redis_server.port, socket_timeout=2.0)
    await plain.connect()
    close_between_check_and_write(plain)
    with pytest.raises(AttributeError, match="NoneType"):
        await plain.send_packed_command(plain.pack_command("PING"))


async def test_other_attribute_errors_pass_through(conn: PackedConnection) -> None:
    async def own_bug() -> None:
        raise AttributeError("'Job' object has no attribute 'x'")

    conn.check_health = own_bug  # type: ignore[method-assign]
    with pytest.raises(AttributeError, match="'Job' object"):
        await conn.send_packed_command(conn.pack_command("PING"))


async def test_a_none_error_raised_outside_the_transport_passes_through(conn: PackedConnection) -> None:
    async def own_bug() -> None:
        none: object = None
        none.writelines([])  # type: ignore[attr-defined]

    conn.check_health = own_bug  # type: ignore[method-assign]
    with pytest.raises(AttributeError, match="NoneType"):
        await conn.send_packed_command(conn.pack_command("PING"))


async def test_the_connection_works_again_after_it(conn: PackedConnection) -> None:
    close_between_check_and_write(conn)
    with pytest.raises(RedisConnectionError):
        await conn.send_packed_command(conn.pack_command("PING"))
    del conn.check_health  # the class's own again
    await conn.send_packed_command(conn.pack_command("PING"))
    assert await conn.read_response() in (b"PONG", "PONG", True)


def test_every_connection_class_the_backends_use_has_it() -> None:
    for cls in (PackedConnection, PackedUnixConnection, TLSConnection):
        assert issubclass(cls, TornConnectionMixin), cls
        assert cls.__mro__.index(TornConnectionMixin) < cls.__mro__.index(AbstractConnection), cls

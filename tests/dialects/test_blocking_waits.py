"""A consumer's blocking wait (BLPOP on the wake-up list, XREAD BLOCK on the stream) never
leaves the server unsound, and keeps the dequeue contract on every dialect.

KeyDB (through 6.3.4) leaves a blocked client in its timeout table when the client returns
before its timeout -- woken by a job, or gone (a cancelled dequeue closes the connection).
At that deadline the server locks the freed client; once its memory holds other data the
server never answers again (docs/servers.md, "KeyDB and blocking commands"). These tests
run on the session's server binary: KeyDB in ``nox -s tests_keydb`` (where they hung the
server before the KeyDB dialect waited without a server-side timeout), Redis or Valkey elsewhere.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
import redis.asyncio as aredis

from queuestore import DequeueOptions, Job
from tests.servers import RedisServer, ServerFactory

from .conftest import Maker

pytestmark = pytest.mark.anyio

LAYOUTS = ("redis-lists", "redis-streams")
#: the size class of a freed client (about 17 KB on KeyDB 6.3.4); consecutive 2-byte words
#: differ, so a lock read from this memory is never free
FILLER = b"abcdefghijklmnopqrstuvwxyz0123456789" * 500
#: the server-side timeout of one blocking call (the backend's block_timeout)
BLOCK = 1.5


async def timeout_table(raw: aredis.Redis) -> tuple[int, int]:
    """``(blocked clients, entries of the blocked clients' timeout table)``."""
    info: dict[str, Any] = await raw.info("clients")
    return int(info["blocked_clients"]), int(info["clients_in_timeout_table"])


async def assert_sound_after_deadline(server: RedisServer, raw: aredis.Redis) -> None:
    """Overwrite freed client memory, let every blocking deadline pass, then the server answers."""
    for i in range(20):
        await raw.set(f"filler:{i}", FILLER)
    await anyio.sleep(BLOCK + 0.3)
    fresh = aredis.Redis(host=server.host, port=server.port, socket_timeout=3, socket_connect_timeout=3)
    try:
        with anyio.fail_after(5):
            assert await fresh.ping()
    finally:
        await fresh.aclose()


@pytest.fixture
async def server_and_raw(redis_server_factory: ServerFactory) -> Any:
    """A fresh server of the session's binary (its timeout table is this test's alone) and a
    connection to it opened first."""
    server = redis_server_factory()
    raw = aredis.Redis(host=server.host, port=server.port, socket_timeout=10)
    await raw.ping()
    try:
        yield server, raw
    finally:
        await raw.aclose()


@pytest.mark.parametrize("backend_type", LAYOUTS)
async def test_a_cancelled_wait_leaves_no_timeout_entry(
    backend_type: str, server_and_raw: Any, make: Maker
) -> None:
    server, raw = server_and_raw
    consumer = await make(backend_type, server.url, block_timeout=BLOCK)
    with anyio.move_on_after(0.4) as scope:
        await consumer.dequeue(DequeueOptions(timeout=BLOCK + 1))
    assert scope.cancelled_caught, "the dequeue returned before it was cancelled"
    await anyio.sleep(0.2)  # the server has seen the blocked connection close
    assert await timeout_table(raw) == (0, 0)
    await assert_sound_after_deadline(server, raw)


@pytest.mark.parametrize("backend_type", LAYOUTS)
async def test_a_woken_wait_leaves_no_timeout_entry(
    backend_type: str, server_and_raw: Any, make: Maker
) -> None:
    server, raw = server_and_raw
    consumer = await make(backend_type, server.url, block_timeout=BLOCK)
    producer = await make(backend_type, server.url, queue=consumer.queue, **_same_keys(consumer))
    got: list[Job | None] = []

    async def consume() -> None:
        got.append(await consumer.dequeue(DequeueOptions(timeout=BLOCK + 1)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.sleep(0.3)
        assert (await timeout_table(raw))[0] == 1, "the consumer is not blocked"
        await producer.enqueue(Job(id="woken", payload={}))
    (job,) = got
    assert job is not None
    assert job.id == "woken"
    await consumer.ack(job)
    await consumer.aclose()  # its blocking connection goes before the wait's deadline
    await anyio.sleep(0.2)
    assert await timeout_table(raw) == (0, 0)
    await assert_sound_after_deadline(server, raw)


def _same_keys(backend: Any) -> dict[str, Any]:
    return {"key_prefix": backend.options.key_prefix}


@pytest.mark.parametrize("backend_type", LAYOUTS)
async def test_the_keydb_wait_keeps_the_dequeue_contract(
    backend_type: str, server_and_raw: Any, make: Maker, pose: Any
) -> None:
    """Posing as KeyDB on any server: the wait has no server-side timeout (the client bounds
    it), a dequeue waits up to its timeout and returns a job as soon as one arrives."""
    server, raw = server_and_raw
    pose("keydb")
    consumer = await make(backend_type, server.url, block_timeout=BLOCK)
    producer = await make(backend_type, server.url, queue=consumer.queue, **_same_keys(consumer))

    started = time.monotonic()
    assert await consumer.dequeue(DequeueOptions(timeout=0.8)) is None
    assert 0.75 <= time.monotonic() - started < 0.8 + 0.5

    got: list[tuple[float, Job | None]] = []

    async def consume() -> None:
        job = await consumer.dequeue(DequeueOptions(timeout=BLOCK * 2))
        got.append((time.monotonic(), job))

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.sleep(0.3)
        assert await timeout_table(raw) == (1, 0), "the wait has a server-side timeout"
        sent = time.monotonic()
        await producer.enqueue(Job(id="soon", payload={}))
    (when, job), *_ = got
    assert job is not None
    assert job.id == "soon"
    assert when - sent < 0.3, f"woken {when - sent:.3f}s after the enqueue"

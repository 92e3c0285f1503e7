"""An entry's body does not repeat the job's id (the entry's ``j`` field) or its queue (the
stream's): the job reads back whole."""

from __future__ import annotations

import msgspec
import pytest

from queuestore import DequeueOptions, Job
from tests.servers import RedisServer

from .conftest import Maker

pytestmark = pytest.mark.anyio


async def test_the_body_carries_no_id_or_queue(make: Maker, redis_server: RedisServer) -> None:
    b = await make()
    job = Job(id="whole", type="mail", payload={"to": "a@b.c"}, max_retries=5, metadata={"k": "v"})
    assert await b.enqueue(job)
    entries = redis_server.sync_client().xrange(b.store.keys.stream)
    assert len(entries) == 1
    fields = entries[0][1]
    assert fields[b"j"] == b"whole"
    stored = msgspec.msgpack.decode(fields[b"b"])
    assert stored["id"] == ""
    assert "queue" not in stored
    got = await b.dequeue(DequeueOptions(timeout=0))
    assert got is not None
    assert (got.id, got.queue, got.type, got.payload) == ("whole", b.queue, "mail", {"to": "a@b.c"})
    assert (got.max_retries, got.metadata, got.created_at) == (5, {"k": "v"}, job.created_at)
    await b.ack(got)

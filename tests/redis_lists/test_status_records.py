"""A call whose reply is a status per job records it as one character a job, and a retry of
the call (the same call id) gets the same statuses back; a record that does not parse is an
unknown outcome, never a guess."""

from __future__ import annotations

import pytest
from redis.exceptions import ResponseError

from queuestore import DequeueOptions, Job, JobState
from tests.servers import RedisServer

from .conftest import Maker

pytestmark = pytest.mark.anyio


async def test_a_retried_ack_gets_every_status_back(lists: Maker, redis_server: RedisServer) -> None:
    b = await lists()
    assert await b.enqueue_many([Job(id=i) for i in ("a", "b", "ready")]) == [True] * 3
    got = await b.dequeue_many(DequeueOptions(count=2))
    assert [j.id for j in got] == ["a", "b"]
    a, bj = got
    assert a.lease_token is not None
    assert bj.lease_token is not None
    sha = b.script_set.scripts["ack"].sha
    block = b.layout.state_block
    guards = [f"i|{a.attempt}|{a.lease_token}|", f"i|{bj.attempt}|stale-token|", "", ""]
    args = ["cid-statuses", "a", "b", "ready", "nobody", *guards]
    client = b.conn.client
    first = await client.evalsha(sha, len(block), *block, *args)
    assert first == b"#1LN0"
    assert redis_server.sync_client().hget(b.keys.key("calls"), "cid-statuses") == b"#1LN0"
    assert await client.evalsha(sha, len(block), *block, *args) == first  # the recorded reply
    assert [j.state if j else None for j in await b.get_jobs(["a", "b", "ready"])] == [
        None,
        JobState.IN_FLIGHT,
        JobState.READY,
    ]


async def test_an_unreadable_status_record_is_an_unknown_outcome(
    lists: Maker, redis_server: RedisServer
) -> None:
    b = await lists()
    assert await b.enqueue(Job(id="g1"))
    got = await b.dequeue()
    assert got is not None
    redis_server.sync_client().hset(b.keys.key("calls"), "cid-bad", b"#1?")
    sha = b.script_set.scripts["ack"].sha
    block = b.layout.state_block
    with pytest.raises(ResponseError, match="QSUNKNOWN"):
        await b.conn.client.evalsha(sha, len(block), *block, "cid-bad", "g1", "")
    assert (await b.get_jobs(["g1"]))[0].state is JobState.IN_FLIGHT  # type: ignore[union-attr]

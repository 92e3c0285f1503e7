"""The batch take of the streams backend: what it sends per call, and what it still checks on
entries read at the fixed places of an entry as enqueue writes it."""

from __future__ import annotations

import anyio
import pytest

from queuestore import DequeueOptions, Job
from queuestore.backends.redis_streams import RedisStreamsFactory
from queuestore.testing import ServerFactory

from .conftest import config, unique

pytestmark = pytest.mark.anyio


async def test_a_take_that_leases_reads_neither_the_tail_nor_the_groups(
    redis_server_factory: ServerFactory,
) -> None:
    server = redis_server_factory()
    b = await RedisStreamsFactory().create(config(server.url, unique("q"), strict_keys=True))
    async with b:
        assert await b.enqueue_many([Job(payload=i) for i in range(60)]) == [True] * 60
        r = server.sync_client()
        r.config_resetstat()
        jobs = await b.dequeue_many(DequeueOptions(count=50))
        stats = r.info("commandstats")
        assert len(jobs) == 50
        # the tail (where a wait would start) and the groups are read only when needed
        assert "cmdstat_xrevrange" not in stats
        assert "cmdstat_xinfo|groups" not in stats
        # one transaction: the entries read by a plain XREADGROUP, one lease record for the
        # take (the other ZADD is the call record's time)
        assert stats["cmdstat_xreadgroup"]["calls"] == 1
        assert stats["cmdstat_exec"]["calls"] == 1
        assert stats["cmdstat_zadd"]["calls"] == 2
        assert len({j.lease_deadline for j in jobs}) == 1
        assert (await b.stats()).in_flight == 50
        # a take that finds nothing still says where to wait: a dequeue with a timeout gets
        # the job enqueued while it waits
        assert await b.ack_many(jobs) == [True] * 50
        assert len(await b.dequeue_many(DequeueOptions(count=10))) == 10

        async def late() -> None:
            await anyio.sleep(0.2)
            await b.enqueue(Job(payload="late"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(late)
            got = await b.dequeue_many(DequeueOptions(count=10, timeout=3.0))
        assert [j.payload for j in got] == ["late"]


async def test_entries_past_their_ttl_beyond_the_sweeps_batch_are_dropped_when_read(
    redis_server_factory: ServerFactory,
) -> None:
    # the sweep drops at most reclaim_batch expired waiting jobs per call; the others are
    # found when read (the expiry field of an entry as enqueue writes it), never leased
    server = redis_server_factory()
    b = await RedisStreamsFactory().create(
        config(server.url, unique("q"), strict_keys=True, reclaim_batch=2, reclaim_interval=3600)
    )
    async with b:
        doomed = [Job(payload=i).with_ttl(0.3) for i in range(10)]
        assert await b.enqueue_many([*doomed, Job(id="kept", payload="k")]) == [True] * 11
        await anyio.sleep(0.5)
        got = await b.dequeue_many(DequeueOptions(count=20))
        assert [j.id for j in got] == ["kept"]
        assert (await b.stats()).in_flight == 1
        assert await b.ack_many(got) == [True]
        assert await b.length() == 0

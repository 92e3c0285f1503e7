"""The batch ack of the streams backend: on a stream that lost no entry it reads no pending
rows, otherwise one ranged read, and it still tells each job's outcome when other leases
crowd its id range, when jobs come out of order or twice, and when entries went behind its back."""

from __future__ import annotations

import anyio
import pytest

from queuestore import DequeueOptions, Job
from queuestore.backends.redis_streams import RedisStreamsFactory
from queuestore.testing import ServerFactory

from .conftest import config, unique

pytestmark = pytest.mark.anyio


async def test_an_ack_on_an_intact_stream_reads_no_pending_rows(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory()
    b = await RedisStreamsFactory().create(config(server.url, unique("q"), strict_keys=True))
    async with b:
        assert await b.enqueue_many([Job(payload=i) for i in range(60)]) == [True] * 60
        jobs = await b.dequeue_many(DequeueOptions(count=50))
        assert len(jobs) == 50
        r = server.sync_client()
        r.config_resetstat()
        assert await b.ack_many(jobs) == [True] * 50
        # no entry was ever deleted from the batch's first on, and every one was delivered: the
        # pending rows are not read. One summary (is anything below the batch still pending?)
        # before deleting it as the stream's head, and one look at what the take's consumer
        # still holds (nothing: it goes)
        assert r.info("commandstats")["cmdstat_xpending"]["calls"] == 2
        assert (await b.stats()).in_flight == 0
        assert await b.length() == 10


async def test_a_stream_missing_an_entry_reads_the_pending_rows_once(
    redis_server_factory: ServerFactory,
) -> None:
    server = redis_server_factory()
    b = await RedisStreamsFactory().create(config(server.url, unique("q"), strict_keys=True))
    async with b:
        assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(60)]) == [True] * 60
        jobs = await b.dequeue_many(DequeueOptions(count=50))
        r = server.sync_client()
        stream = b.skeys.stream
        r.xdel(stream, r.xrange(stream)[55][0])  # a ready entry after the batch, behind our back
        r.config_resetstat()
        assert await b.ack_many(jobs) == [True] * 50
        calls = r.info("commandstats")
        # one ranged read of the batch's pending rows, one look at the take's consumer; the
        # entries deleted one by one (each XDEL says whether it was still there)
        assert calls["cmdstat_xpending"]["calls"] == 2
        assert calls["cmdstat_xdel"]["calls"] == 50
        assert (await b.stats()).in_flight == 0
        assert await b.length() == 9


async def test_the_batch_range_of_entries_of_several_milliseconds(
    redis_server_factory: ServerFactory,
) -> None:
    server = redis_server_factory()
    b = await RedisStreamsFactory().create(config(server.url, unique("q"), strict_keys=True))
    async with b:
        # entry ids "<ms>-0".."<ms>-14", then "<ms'>-0".."<ms'>-4": the highest id is not the
        # longest, and the id order is not the string order; then five more, left ready
        for n in (15, 5, 5):
            assert await b.enqueue_many([Job(payload=i) for i in range(n)]) == [True] * n
            await anyio.sleep(0.01)
        jobs = await b.dequeue_many(DequeueOptions(count=20))
        r = server.sync_client()
        r.config_resetstat()
        assert await b.ack_many(jobs) == [True] * 20
        # the batch is the head, up to its highest id: one XTRIM, and the ready five stay
        assert r.info("commandstats")["cmdstat_xtrim"]["calls"] == 1
        assert r.xlen(b.skeys.stream) == 5
        rest = await b.dequeue_many(DequeueOptions(count=10))
        assert sorted(j.payload for j in rest) == list(range(5))
        assert await b.ack_many(rest) == [True] * 5


async def test_a_batch_out_of_order_naming_a_job_twice(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory()
    b = await RedisStreamsFactory().create(config(server.url, unique("q"), strict_keys=True))
    async with b:
        assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(8)]) == [True] * 8
        jobs = await b.dequeue_many(DequeueOptions(count=8))
        batch = [*reversed(jobs[2:]), jobs[4], jobs[0]]
        # the second naming of j4 finds it acked by the first; j1 stays leased
        assert await b.ack_many(batch) == [True] * 6 + [False, True]
        assert (await b.stats()).in_flight == 1
        assert await b.ack_many([jobs[1]]) == [True]
        assert await b.length() == 0
        assert (await b.stats()).in_flight == 0


async def test_an_entry_acked_behind_our_back_is_acked_by_its_holder(
    redis_server_factory: ServerFactory,
) -> None:
    """Something else XACKed a leased entry without deleting it (nothing of ours does: an ack,
    nack or reclaim deletes the entry). The holder's lease on the job stands: its ack ends the
    job, once, and leaves nothing behind."""
    server = redis_server_factory()
    b = await RedisStreamsFactory().create(config(server.url, unique("q"), strict_keys=True))
    async with b:
        assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(4)]) == [True] * 4
        jobs = await b.dequeue_many(DequeueOptions(count=4))
        r = server.sync_client()
        stream = b.skeys.stream
        assert r.xack(stream, b.store.group, jobs[1].lease_token.split("\x1f")[2]) == 1
        assert await b.ack_many(jobs) == [True] * 4
        assert r.xlen(stream) == 0
        assert r.hlen(b.skeys.idx) == 0
        assert await b.get_jobs([j.id for j in jobs]) == [None] * 4
        assert (await b.stats()).in_flight == 0


async def test_ack_many_in_a_range_crowded_by_other_leases(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory()
    b = await RedisStreamsFactory().create(config(server.url, unique("q"), strict_keys=True))
    async with b:
        assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(20)]) == [True] * 20
        mine: list[Job] = []
        theirs: list[Job] = []
        # leases alternate between two consumers: each one's entries interleave in the pending list
        for i in range(16):
            got = await b.dequeue_many(DequeueOptions(count=1, consumer_id="a" if i % 2 == 0 else "b"))
            (mine if i % 2 == 0 else theirs).extend(got)
        assert len(mine) == len(theirs) == 8
        stale = mine[3]
        await b.nack(stale, requeue=True)  # a new entry: the old lease token is stale
        again = await b.dequeue_many(DequeueOptions(count=10, consumer_id="a"))
        assert stale.id in {j.id for j in again}
        batch = [*mine, Job(id="never-stored")]
        outcome = await b.ack_many(batch)
        assert outcome == [True, True, True, False, True, True, True, True, False]
        # the other consumer's leases are untouched and its acks land
        assert await b.ack_many(theirs) == [True] * 8
        assert await b.ack_many(again) == [True] * len(again)
        assert await b.length() == 0
        assert (await b.stats()).in_flight == 0


async def test_ack_many_deletes_the_entries_with_one_command(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory()
    b = await RedisStreamsFactory().create(config(server.url, unique("q"), strict_keys=True))
    async with b:
        assert await b.enqueue_many([Job(payload=i) for i in range(60)]) == [True] * 60
        r = server.sync_client()
        for _ in range(2):  # the second batch: entries deleted before it, all of lower ids
            jobs = await b.dequeue_many(DequeueOptions(count=30))
            r.config_resetstat()
            assert await b.ack_many(jobs) == [True] * 30
            stats = r.info("commandstats")
            # the batch is the stream's head: one XTRIM, no XDEL
            assert stats["cmdstat_xtrim"]["calls"] == 1
            assert "cmdstat_xdel" not in stats
        assert r.xlen(b.skeys.stream) == 0
        assert (await b.stats()).total_acked == 60


@pytest.mark.parametrize("how", ["xdel", "xtrim"])
async def test_ack_many_reports_entries_removed_behind_its_back(
    redis_server_factory: ServerFactory, how: str
) -> None:
    server = redis_server_factory()
    b = await RedisStreamsFactory().create(config(server.url, unique("q"), strict_keys=True))
    async with b:
        assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(10)]) == [True] * 10
        first = await b.dequeue_many(DequeueOptions(count=5))
        later = await b.dequeue_many(DequeueOptions(count=5))
        r = server.sync_client()
        stream = b.skeys.stream
        entries = [e[0] for e in r.xrange(stream)]
        if how == "xdel":
            r.xdel(stream, entries[7])  # one entry of the later batch, behind the backend's back
            expected = [True, True, False, True, True]
        else:
            r.xtrim(stream, minid=entries[2], approximate=False)  # the first two entries of the first batch
            expected = [False, False, True, True, True]
        batch = later if how == "xdel" else first
        assert await b.ack_many(batch) == expected
        assert (await b.stats()).in_flight == 5
        rest = first if how == "xdel" else later
        assert await b.ack_many(rest) == [True] * 5
        assert (await b.stats()).in_flight == 0


async def test_the_head_is_trimmed_only_when_the_batch_is_all_of_it(
    redis_server_factory: ServerFactory,
) -> None:
    server = redis_server_factory()
    b = await RedisStreamsFactory().create(config(server.url, unique("q"), strict_keys=True))
    async with b:
        assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(6)]) == [True] * 6
        r = server.sync_client()
        stream = b.skeys.stream
        # another consumer's lease below the batch: the batch is deleted entry by entry
        other = await b.dequeue_many(DequeueOptions(count=1, consumer_id="other"))
        mine = await b.dequeue_many(DequeueOptions(count=2, consumer_id="me"))
        r.config_resetstat()
        assert await b.ack_many(mine) == [True, True]
        stats = r.info("commandstats")
        assert stats["cmdstat_xdel"]["calls"] == 1
        assert "cmdstat_xtrim" not in stats
        assert r.xrange(stream)[0][0].decode() == other[0].lease_token.split("\x1f")[2]
        assert await b.ack_many(other) == [True]
        # an entry acked behind the backend's back (not deleted) below the batch is kept: a
        # trim of the head would take it too
        got = await b.dequeue_many(DequeueOptions(count=3))
        stray = got[0].lease_token.split("\x1f")[2]
        assert r.xack(stream, b.store.group, stray) == 1
        r.config_resetstat()
        assert await b.ack_many(got[1:]) == [True, True]
        assert "cmdstat_xtrim" not in r.info("commandstats")
        assert [e[0].decode() for e in r.xrange(stream)] == [stray]


@pytest.mark.parametrize("own", [False, True], ids=["another-consumer", "the-takes-consumer"])
async def test_a_forged_token_past_the_batch_does_not_trim_the_ready_jobs(
    redis_server_factory: ServerFactory, own: bool
) -> None:
    """A batch of real tokens plus a forged one naming a ready job's entry after the batch, under
    another consumer or under the take's own (the call is then one run of tokens): the forged one
    is a lost lease, and the batch's deletion stops at the batch (a trim of the head up to the
    forged entry would delete the ready jobs before it)."""
    server = redis_server_factory()
    b = await RedisStreamsFactory().create(config(server.url, unique("q"), strict_keys=True))
    async with b:
        assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(8)]) == [True] * 8
        jobs = await b.dequeue_many(DequeueOptions(count=4))
        r = server.sync_client()
        entries = {e[1][b"j"].decode(): e[0].decode() for e in r.xrange(b.skeys.stream)}
        consumer = jobs[0].lease_token.split("\x1f")[1] if own else "someone"
        forged = Job(id="j6", payload=6, lease_token=f"{b.group}\x1f{consumer}\x1f{entries['j6']}\x1f1")
        assert await b.ack_many([*jobs, forged]) == [True] * 4 + [False]
        assert r.xlen(b.skeys.stream) == 4
        rest = await b.dequeue_many(DequeueOptions(count=10))
        assert sorted(j.id for j in rest) == ["j4", "j5", "j6", "j7"]
        assert await b.ack_many(rest) == [True] * 4
        assert await b.length() == 0


async def test_a_take_is_acked_whole_with_or_without_extended_jobs(
    redis_server_factory: ServerFactory,
) -> None:
    """A take's entries have lease records of their own only once extended (the take is then
    marked, and the batch ack removes them). Either way the leases zset is left empty, and a
    second ack finds the job gone."""
    server = redis_server_factory()
    b = await RedisStreamsFactory().create(config(server.url, unique("q"), strict_keys=True))
    async with b:
        assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(20)]) == [True] * 20
        r = server.sync_client()
        leases = b.skeys.leases
        for extend in (False, True):
            jobs = await b.dequeue_many(DequeueOptions(count=10))
            if extend:
                assert await b.extend_lease(jobs[3], 60)
                assert r.zcard(leases) == 3  # the take's record, the entry's own, the take's mark
            else:
                assert r.zcard(leases) == 1
            assert await b.ack_many(jobs) == [True] * 10
            assert r.zcard(leases) == 0
            assert await b.ack_many(jobs[3:4]) == [False]
        assert await b.length() == 0


async def test_the_mark_of_an_extended_take_goes_when_the_take_closes(
    redis_server_factory: ServerFactory,
) -> None:
    """The take's lease runs out: the jobs not extended are reclaimed and redelivered, the
    extended one stays leased; once it is acked too, nothing is left in the leases zset."""
    server = redis_server_factory()
    b = await RedisStreamsFactory().create(config(server.url, unique("q"), strict_keys=True))
    async with b:
        assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(3)]) == [True] * 3
        jobs = await b.dequeue_many(DequeueOptions(count=3, visibility_timeout=0.3))
        assert await b.extend_lease(jobs[1], 60)
        await anyio.sleep(0.5)
        again = await b.dequeue_many(DequeueOptions(count=3))
        assert sorted(j.id for j in again) == ["j0", "j2"]
        assert await b.ack_many(again) == [True, True]
        r = server.sync_client()
        assert r.zcard(b.skeys.leases) == 2  # the extended entry's record and its take's mark
        assert await b.ack(jobs[1]) is None
        assert r.zcard(b.skeys.leases) == 0
        assert (await b.stats()).in_flight == 0


async def test_a_token_spelling_an_entry_id_with_a_leading_zero_is_not_acked_as_its_entry(
    redis_server_factory: ServerFactory,
) -> None:
    """A forged token naming a batch's last entry with a zero-padded sequence part ("-03" for
    "-3", which the server reads as the same entry), for an id whose index entry was made to say
    the same (garbage in our keys): as written it sorts after the real one and before the next
    millisecond's entries, so the batch looks ascending and delivered, but it is not an id as
    the server writes it. The forged job is reported not acked, the real ones acked, and the
    acked count is the real jobs'."""
    server = redis_server_factory()
    b = await RedisStreamsFactory().create(config(server.url, unique("q"), strict_keys=True))
    async with b:
        assert await b.enqueue_many([Job(id=f"j{i}", payload=i) for i in range(4)]) == [True] * 4
        await anyio.sleep(0.005)  # the next entry in a later millisecond
        assert await b.enqueue(Job(id="j4", payload=4))
        jobs = await b.dequeue_many(DequeueOptions(count=5))
        assert [j.id for j in jobs] == ["j0", "j1", "j2", "j3", "j4"]
        group, consumer, last, _ = jobs[3].lease_token.split("\x1f")
        ms, seq = last.split("-")
        assert jobs[4].lease_token.split("\x1f")[2].split("-")[0] > ms
        padded = f"{ms}-0{seq}"
        r = server.sync_client()
        r.hset(b.skeys.idx, "forged", padded)
        forged = Job(id="forged", payload=0, lease_token=f"{group}\x1f{consumer}\x1f{padded}\x1f1")
        assert await b.ack_many([*jobs[:4], forged]) == [True] * 4 + [False]
        assert await b.ack_many(jobs[4:]) == [True]
        assert (await b.stats()).in_flight == 0
        assert await b.length() == 0
        assert int(r.hget(b.skeys.counters, "acked")) == 5

"""Streams-specific points of redrive, purge, delete, dead-letter retention and retry backoff:
fan-out groups, nothing left behind (every entry, index, parked and TTL record removed), pages
of ``ALL``, re-sent calls, lease records of deleted jobs, and a cross-slot redrive."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from redis.crc import key_slot

from queuestore import ALL, DequeueOptions, InvalidJobError, Job, JobState, LeaseLostError
from queuestore.backends.redis_streams import dlq, lookup
from queuestore.backends.redis_streams.layout import call_id

from .conftest import Maker, unique

pytestmark = pytest.mark.anyio


async def kill(backend: Any, jobs: list[Job], group: str | None = None) -> None:
    """Dequeue and dead-letter ``jobs`` (each has max_retries=0) in ``group``."""
    assert all(await backend.enqueue_many(jobs))
    opts = DequeueOptions(count=len(jobs), consumer_group=group)
    got = await backend.dequeue_many(opts)
    assert sorted(j.id for j in got) == sorted(j.id for j in jobs)
    for job in got:
        await backend.nack(job, requeue=True, error="boom")


async def leftovers(backend: Any) -> dict[str, int]:
    """How many entries / records the queue's job-holding keys still have."""
    raw, k = backend.conn.client, backend.skeys
    return {
        "stream": await raw.xlen(k.stream),
        "dead": await raw.xlen(k.dead),
        "idx": await raw.hlen(k.idx),
        "delayed": await raw.zcard(k.delayed),
        "parked": await raw.hlen(k.parked),
        "meta": await raw.hlen(k.meta),
        "ttl": await raw.zcard(k.ttl),
        "leases": await raw.zcard(k.leases),
    }


EMPTY = dict.fromkeys(("stream", "dead", "idx", "delayed", "parked", "meta", "ttl", "leases"), 0)


async def test_a_redriven_fan_out_job_goes_back_to_the_group_it_died_in(make: Maker) -> None:
    billing = await make(consumer_group="billing", groups=("billing", "audit"))
    audit = await make(consumer_group="audit")
    job = Job(payload="x", max_retries=0)
    await kill(billing, [job])
    seen = await audit.dequeue()  # the other group still gets its own delivery
    assert seen is not None
    assert seen.id == job.id
    await audit.ack(seen)
    dead = await billing.conn.client.xrange(billing.skeys.dead)
    assert dead[0][1][b"g"] == b"billing", "the dead letter names the group it died in"
    assert await billing.redrive(ALL) == 1
    back = await billing.dequeue()
    assert back is not None
    assert back.id == job.id
    assert (back.retry_count, back.attempt, back.last_error) == (0, 2, "boom")
    assert await audit.dequeue() is None, "the redrive is for the group it died in only"
    await billing.ack(back)
    assert await leftovers(billing) == EMPTY


async def test_each_group_gets_back_its_own_dead_letter_of_a_job(make: Maker) -> None:
    a = await make(consumer_group="a", groups=("a", "b"))
    b = await make(consumer_group="b")
    job = Job(payload="y", max_retries=0)
    await kill(a, [job])
    got = await b.dequeue()
    assert got is not None
    await b.nack(got, requeue=True, error="b failed")
    assert await a.conn.client.xlen(a.skeys.dead) == 2
    assert await a.redrive(ALL) == 2
    ja, jb = await a.dequeue(), await b.dequeue()
    assert ja is not None
    assert jb is not None
    assert ja.id == jb.id == job.id
    assert await a.dequeue() is None, "once per group"
    assert await b.dequeue() is None, "once per group"
    await a.ack(ja)
    await b.ack(jb)
    assert await leftovers(a) == EMPTY


async def test_a_dead_letter_of_a_group_that_is_gone_comes_back_for_every_group(make: Maker) -> None:
    a = await make(consumer_group="a", groups=("a", "b", "c"))
    job = Job(payload="z", max_retries=0)
    await kill(a, [job])
    raw = a.conn.client
    for group in ("b", "c"):  # their own deliveries of the job
        got = await a.dequeue(DequeueOptions(consumer_group=group))
        assert got is not None
        await a.ack(got)
    await raw.xgroup_destroy(a.skeys.stream, "a")
    assert await a.redrive(ALL) == 1
    for group in ("b", "c"):
        got = await a.dequeue(DequeueOptions(consumer_group=group))
        assert got is not None, f"group {group} gets the job the removed group had dead-lettered"
        assert got.id == job.id
        await a.ack(got)
    assert await leftovers(a) == EMPTY


async def test_purge_by_id_and_all_leaves_nothing_behind(make: Maker) -> None:
    b = await make()
    assert await b.enqueue(Job(id=unique("l"), payload="l"))
    leased = await b.dequeue()  # in flight: purge never takes it
    assert leased is not None
    await kill(b, [Job(payload=i, max_retries=0) for i in range(3)])
    soon = time.time() + 3600
    ready = [Job(payload=i, expires_at=soon) for i in range(3)]
    delayed = [Job(payload=i, available_at=time.time() + 600, expires_at=soon) for i in range(3)]
    assert all(await b.enqueue_many([*ready, *delayed]))
    assert await b.purge(JobState.READY, [ready[1].id, delayed[0].id, leased.id, "nope"]) == 1
    assert await b.purge(JobState.DELAYED, [delayed[0].id, ready[0].id]) == 1
    assert await b.purge(JobState.DELAYED, ALL) == 2
    assert await b.purge(JobState.DEAD, ALL) == 3
    assert await b.purge(JobState.READY, ALL) == 2
    assert await b.purge(JobState.READY, ALL) == 0
    with pytest.raises(InvalidJobError) as bad:
        await b.purge(JobState.IN_FLIGHT, ALL)
    assert bad.value.field == "state"
    await b.ack(leased)
    assert await leftovers(b) == EMPTY
    stats = await b.stats()
    assert (stats.queue_depth, stats.delayed, stats.in_flight, stats.dead) == (0, 0, 0, 0)
    assert stats.total_acked == 1, "purged jobs are not counted as acked"


async def test_delete_in_every_state_leaves_nothing_behind(make: Maker) -> None:
    b = await make(visibility_timeout=1.0)
    ready, delayed, dead, leased = (
        Job(id=unique(s), payload=s, max_retries=0, expires_at=time.time() + 60) for s in ("r", "d", "x", "l")
    )
    delayed.available_at = time.time() + 600
    await kill(b, [dead])
    assert all(await b.enqueue_many([leased]))
    held = await b.dequeue()
    assert held is not None
    assert held.id == leased.id
    assert all(await b.enqueue_many([ready, delayed]))
    for job in (ready, delayed, dead, leased):
        assert await b.delete(job.id) is True
        assert await b.delete(job.id) is False
    assert await b.get_jobs([j.id for j in (ready, delayed, dead, leased)]) == [None] * 4
    for call in (b.ack(held), b.nack(held), b.extend_lease(held, 5), b.move(held, unique("t"))):
        with pytest.raises(LeaseLostError):
            await call
    assert (await leftovers(b))["leases"] == 1, "the lease record stays until its deadline"
    await anyio.sleep(1.1)
    await b.sweep()
    assert await leftovers(b) == EMPTY


async def test_redrive_all_walks_pages_in_dead_order(make: Maker) -> None:
    b = await make(strict_keys=False)
    jobs = [Job(id=f"p{i:05d}", payload=i, max_retries=0) for i in range(dlq.PAGE * 2 + 17)]
    for i in range(0, len(jobs), 400):
        await kill(b, jobs[i : i + 400])
    assert await b.enqueue(Job(id="fresh", payload="f"))
    assert await b.redrive(ALL) == len(jobs)
    got = []
    while batch := await b.dequeue_many(DequeueOptions(count=500)):
        got += batch
        await b.ack_many(batch)
    assert [j.id for j in got] == ["fresh", *(j.id for j in jobs)], "at the back, in the order they died"
    assert {j.retry_count for j in got} == {0}
    assert await leftovers(b) == EMPTY


async def test_a_re_sent_redrive_call_does_not_act_twice(make: Maker) -> None:
    b = await make()
    job = Job(payload="once", max_retries=0)
    await kill(b, [job])
    cid = call_id()
    args = ["redrive", cid, b.queue, dlq.PAGE, "", "", job.id]
    first = await b.store.mutate("redrive", "dlq", b.skeys.core(), args)
    got = await b.dequeue()
    assert got is not None
    await b.nack(got, requeue=False)  # dead again
    again = await b.store.mutate("redrive", "dlq", b.skeys.core(), args)
    assert first == again == [1, b"", b""]
    assert (await b.get_jobs([job.id]))[0].state == JobState.DEAD, "the re-sent call did not act again"


async def test_redrive_to_another_queue_and_across_cluster_slots(make: Maker, make_cluster: Maker) -> None:
    for maker in (make, make_cluster):
        src = await maker(unique("src"))
        dst = await maker(unique("dst"))
        jobs = [Job(id=unique("j"), payload=i, max_retries=0) for i in range(4)]
        await kill(src, jobs)
        assert await dst.enqueue(Job(id=jobs[3].id, payload="theirs"))
        assert await src.redrive([jobs[0].id, "missing"], to_queue=dst.queue) == 1
        assert await src.redrive(ALL, to_queue=dst.queue) == 2, "the id the target stores is not counted"
        assert await src.redrive(ALL, to_queue=dst.queue) == 0
        kept = (await src.get_jobs([jobs[3].id]))[0]
        assert kept is not None
        assert (kept.state, kept.dead_reason) == (JobState.DEAD, "boom"), "it stays dead here"
        got = await dst.dequeue_many(DequeueOptions(count=10))
        assert [j.id for j in got] == [j.id for j in jobs[3:]] + [j.id for j in jobs[:3]]
        assert got[0].payload == "theirs"
        fields = {(j.retry_count, j.attempt, j.origin_queue, j.dead_reason) for j in got[1:]}
        assert fields == {(0, 2, src.queue, None)}  # the attempt that died, and this one
        await dst.ack_many(got)
        assert await src.purge(JobState.DEAD, ALL) == 1
        assert await leftovers(src) == EMPTY
        assert await leftovers(dst) == EMPTY


async def test_a_cross_slot_redrive_that_finds_the_id_in_the_target_late_leaves_it_dead(
    make_cluster: Maker, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = await make_cluster(unique("src"))
    dst = await make_cluster(unique("dst"))
    while key_slot(dst.skeys.stream.encode()) == key_slot(src.skeys.stream.encode()):
        dst = await make_cluster(unique("dst"))
    job = Job(id=unique("j"), payload="ours", max_retries=2)
    assert await src.enqueue(job)
    for _ in range(3):
        got = await src.dequeue()
        assert got is not None
        await src.nack(got, delay=0, error="boom")
    assert await dst.enqueue(Job(id=job.id, payload="theirs"))

    async def not_yet(*_: Any) -> bool:
        return False  # the target gets the id after this check: the race the undo step covers

    monkeypatch.setattr(lookup, "stored", not_yet)
    assert await src.redrive([job.id], to_queue=dst.queue) == 0
    back = (await src.get_jobs([job.id]))[0]
    assert back is not None
    assert (back.state, back.retry_count, back.dead_reason) == (JobState.DEAD, 2, "boom")
    theirs = await dst.dequeue()
    assert theirs is not None
    assert theirs.payload == "theirs"
    await dst.ack(theirs)
    assert await src.purge(JobState.DEAD, [job.id]) == 1
    assert await leftovers(src) == EMPTY
    assert await leftovers(dst) == EMPTY


async def test_dead_letters_past_retention_or_count_are_dropped_oldest_first(make: Maker) -> None:
    aged = await make(dead_retention=0.3, dead_max="none")
    await kill(aged, [Job(payload=i, max_retries=0) for i in range(4)])
    assert await aged.sweep() == 0
    await anyio.sleep(0.35)
    young = Job(payload="young", max_retries=0)
    await kill(aged, [young])
    assert await aged.sweep() == 4
    assert [j.id for j in await aged.get_jobs([young.id]) if j] == [young.id]
    assert (await aged.stats()).total_dead_dropped == 4
    capped = await make(unique("capped"), dead_retention="none", dead_max=2)
    jobs = [Job(id=f"c{i}", payload=i, max_retries=0) for i in range(5)]
    for job in jobs:
        await kill(capped, [job])
    assert await capped.sweep() == 3
    left = [e[1][b"j"].decode() for e in await capped.conn.client.xrange(capped.skeys.dead)]
    assert left == ["c3", "c4"]
    assert await capped.conn.client.hlen(capped.skeys.idx) == 2
    assert (await capped.stats()).total_dead_dropped == 3


async def test_retry_backoff_delays_a_nack_without_delay(make: Maker) -> None:
    b = await make(retry_backoff={"base": "200ms", "factor": 3, "max": "1s", "jitter": 0})
    job = Job(payload="b", max_retries=5)
    await b.enqueue(job)
    dues = []
    for _ in range(3):
        got = await b.dequeue(DequeueOptions(timeout=3.0))
        assert got is not None
        before = time.time()
        await b.nack(got)
        stored = (await b.get_jobs([job.id]))[0]
        assert stored is not None
        assert stored.state == JobState.DELAYED
        assert stored.available_at
        dues.append(stored.available_at - before)
    assert [round(d, 1) for d in dues] == [0.2, 0.6, 1.0]
    got = await b.dequeue(DequeueOptions(timeout=3.0))
    assert got is not None
    await b.nack(got, delay=0)  # an explicit delay wins
    assert (await b.get_jobs([job.id]))[0].state == JobState.READY


async def test_an_undecodable_dead_letter_redriven_across_slots_is_not_lost(make_cluster: Maker) -> None:
    src = await make_cluster(unique("src"))
    dst = await make_cluster(unique("dst"))
    while key_slot(dst.skeys.stream.encode()) == key_slot(src.skeys.stream.encode()):
        dst = await make_cluster(unique("dst"))
    raw = src.conn.client
    did = await raw.xadd(src.skeys.dead, {"j": "junk", "b": b"\xff not a job", "r": "0", "m": "0", "a": "1"})
    await raw.hset(src.skeys.idx, "junk", b"X" + did)
    assert await src.redrive(["junk"], to_queue=dst.queue) == 1
    assert await leftovers(src) == EMPTY
    assert await dst.dequeue() is None, "it does not decode there either: dead-lettered, not handed out"
    dead = await dst.conn.client.xrange(dst.skeys.dead)
    assert [(e[1][b"j"], e[1][b"why"][:17]) for e in dead] == [(b"junk", b"undecodable entry")]


async def test_a_dead_letter_whose_id_is_not_utf8_stays_dead_in_a_redrive_across_slots(
    make_cluster: Maker,
) -> None:
    src = await make_cluster(unique("src"))
    dst = await make_cluster(unique("dst"))
    while key_slot(dst.skeys.stream.encode()) == key_slot(src.skeys.stream.encode()):
        dst = await make_cluster(unique("dst"))
    junk = {b"j": b"\xffjunk", b"b": b"", b"r": b"0", b"m": b"0", b"a": b"1"}
    await src.conn.client.xadd(src.skeys.dead, junk)
    assert await src.enqueue(Job(id="later", max_retries=0))
    later = await src.dequeue()
    assert later is not None
    await src.nack(later, requeue=False)
    # the other dead letter moves; this one no queue can take, and it is not lost
    assert await src.redrive(ALL, to_queue=dst.queue) == 1
    assert [e[1] for e in await src.conn.client.xrange(src.skeys.dead)] == [junk]
    moved = await dst.dequeue()
    assert moved is not None
    assert moved.id == "later"

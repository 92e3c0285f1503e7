"""redis-streams keeps the truth on the server: leases on the server's clock, fan-out retries
for their own group only, garbage in our own keys dead-lettered while the rest flows, and
out-of-range or mistyped arguments refused by name."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from queuestore import ConfigurationError, DequeueOptions, InvalidJobError, Job, JobState, LeaseLostError

from .conftest import Maker

pytestmark = pytest.mark.anyio


async def lease_score(backend: Any, job: Job) -> float:
    eid = (job.lease_token or "").split("\x1f")[2]
    score = await backend.conn.client.zscore(backend.skeys.leases, f"{backend.group}\x1f{eid}")
    assert score is not None
    return float(score)


# -- leases on the server's clock -------------------------------------------------------------
async def test_a_worker_whose_clock_is_ahead_does_not_take_a_leased_job(
    make: Maker, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await make(visibility_timeout=30)
    b = await make(visibility_timeout=30)
    await a.enqueue(Job(id="c1", payload=1))
    got = await a.dequeue()
    assert got is not None
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 40.0)  # this process's clock runs 40 s ahead
    assert await b.dequeue(DequeueOptions(timeout=0)) is None, "a lease of 30 s is not over after 1 s"
    assert got.lease_deadline == await lease_score(a, got) / 1000.0, "the deadline is the stored one"
    deadline = await b.extend_lease(got, 10)
    assert deadline == await lease_score(a, got) / 1000.0, "extend returns what the server stored"
    assert deadline < real() + 20, "the new deadline is on the server's clock, not the skewed one"
    await a.ack(got)


# -- fan-out (several consumer groups) ----------------------------------------------------------
async def test_a_delayed_nack_in_one_group_is_not_redelivered_to_another(make: Maker) -> None:
    a = await make(consumer_group="a", groups=("a", "b"))
    b = await make(consumer_group="b", groups=("a", "b"))
    await a.enqueue(Job(id="f1", payload=1, max_retries=3))
    got_b = await b.dequeue()
    assert got_b is not None
    await b.ack(got_b)
    got_a = await a.dequeue()
    assert got_a is not None
    await a.nack(got_a, requeue=True, delay=0.3)
    again = await a.dequeue(DequeueOptions(timeout=5))
    assert again is not None
    assert (again.id, again.retry_count) == ("f1", 1)
    assert await b.dequeue(DequeueOptions(timeout=0)) is None, "group b acked it already"
    await a.ack(again)
    raw = a.conn.client
    assert await raw.xlen(a.skeys.stream) == 0
    assert await raw.hlen(a.skeys.idx) == 0


async def test_requeues_in_one_group_leave_no_index_entry_behind(make: Maker) -> None:
    a = await make(consumer_group="a", groups=("a", "b"))
    b = await make(consumer_group="b", groups=("a", "b"))
    n = 100
    await a.enqueue_many([Job(id=f"r{i}", payload=i, max_retries=3) for i in range(n)])
    for _ in range(n):
        got = await a.dequeue()
        assert got is not None
        await a.nack(got, requeue=True)
    retried = await a.dequeue_many(DequeueOptions(count=n))
    assert len(retried) == n
    assert await a.ack_many(retried) == [True] * n
    seen: list[str] = []
    while batch := await b.dequeue_many(DequeueOptions(count=500)):
        assert await b.ack_many(batch) == [True] * len(batch)
        seen += [j.id for j in batch]
    assert sorted(seen) == sorted(f"r{i}" for i in range(n)), "group b gets each job once"
    raw = a.conn.client
    assert await raw.xlen(a.skeys.stream) == 0
    for group in ("a", "b"):
        assert (await raw.xpending(a.skeys.stream, group))["pending"] == 0
    assert await raw.hlen(a.skeys.idx) == 0, "every job is gone, so is its index entry"


# -- garbage in our own keys ----------------------------------------------------------------------
async def test_garbage_parked_meta_is_dead_lettered_and_the_other_jobs_flow(make: Maker) -> None:
    b = await make()
    soon = time.time() + 0.2
    await b.enqueue_many(
        [
            Job(id="late-json", payload=1, available_at=soon),
            Job(id="late-type", payload=2, available_at=soon),
            Job(id="late-ok", payload=3, available_at=soon),
            Job(id="now", payload=4),
        ]
    )
    raw = b.conn.client
    await raw.hset(b.skeys.meta, "late-json", b"not json {")
    await raw.hset(b.skeys.meta, "late-type", b'{"r": "many", "m": 3}')
    await anyio.sleep(0.3)
    # every read sweeps first; none of them fails
    assert await b.length() == 2
    assert await b.peek(0) is not None
    await b.stats()
    assert len([j async for j in b.iter()]) >= 2
    got = await b.dequeue_many(DequeueOptions(count=10))
    assert sorted(j.id for j in got) == ["late-ok", "now"]
    dead = await b.get_jobs(["late-json", "late-type"])
    assert [j.state if j else None for j in dead] == [JobState.DEAD, JobState.DEAD]
    assert dead[0] is not None
    assert dead[0].dead_reason == "unreadable parked meta"
    assert dead[1] is not None
    assert "not a number" in (dead[1].dead_reason or "")
    assert dead[0].payload == 1, "the body is kept"


async def test_a_held_delayed_job_without_its_due_time_is_dead_lettered_on_restore(make: Maker) -> None:
    b = await make()
    await b.enqueue(Job(id="h1", payload=1))
    held = await b.migration_hold("m1", JobState.READY, 10)
    assert [j.id for j in held] == ["h1"]
    body = b.codec.encode(Job(id="h2", queue=b.queue, payload=2))
    raw = b.conn.client
    key = b.skeys.held("m1")
    await raw.xadd(key, {"j": "h2", "b": body, "s": "delayed"})
    await raw.xadd(key, {"j": "h3", "b": b.codec.encode(Job(id="h3", queue=b.queue, payload=3)), "s": "zzz"})
    assert await b.migration_restore("m1") == 3
    jobs = await b.get_jobs(["h1", "h2", "h3"])
    assert [j.state if j else None for j in jobs] == [JobState.READY, JobState.DEAD, JobState.DEAD]
    assert jobs[2] is not None
    assert jobs[2].dead_reason == "unknown held state zzz"


# -- out-of-range and mistyped arguments ----------------------------------------------------------
async def test_a_lease_beyond_ten_years_is_refused_by_name(make: Maker) -> None:
    with pytest.raises(ConfigurationError, match="visibility_timeout"):
        await make(visibility_timeout=1e15)
    with pytest.raises(ConfigurationError, match="claim_min_idle"):
        await make(claim_min_idle=1e15)
    b = await make()
    await b.enqueue(Job(id="v1", payload=1))
    with pytest.raises(InvalidJobError, match="visibility_timeout"):
        await b.dequeue(DequeueOptions(visibility_timeout=1e15))
    got = await b.dequeue()
    assert got is not None
    with pytest.raises(InvalidJobError, match="seconds"):
        await b.extend_lease(got, 1e15)
    with pytest.raises(InvalidJobError, match="delay"):
        await b.nack(got, requeue=True, delay=1e15)
    await b.ack(got)


async def test_a_mistyped_consumer_group_is_refused_unless_creating_is_asked_for(make: Maker) -> None:
    b = await make()
    await b.enqueue(Job(id="g1", payload=1))
    with pytest.raises(InvalidJobError, match="consumer_group"):
        await b.dequeue(DequeueOptions(consumer_group="wokers"))
    raw = b.conn.client
    assert [g["name"] for g in await raw.xinfo_groups(b.skeys.stream)] == [b"workers"]
    creator = await make(create_groups=True)
    got = await creator.dequeue(DequeueOptions(consumer_group="audit"))
    assert got is not None
    assert got.id == "g1"
    await creator.ack(got)
    # a group the stream already has (made by another process) is fine
    assert await b.dequeue(DequeueOptions(consumer_group="audit", timeout=0)) is None


# -- forged lease tokens ----------------------------------------------------------------------
async def _forged(backend: Any, job_id: str, group: str | None = None) -> Job:
    """A Job for ``job_id`` carrying a well-formed token naming its real entry, as only someone
    who read the stream could write it."""
    entries = await backend.conn.client.xrange(backend.skeys.stream)
    eid = next(e[0].decode() for e in entries if e[1][b"j"] == job_id.encode())
    return Job(id=job_id, payload=1, lease_token=f"{group or backend.group}\x1fsomeone\x1f{eid}\x1f1")


@pytest.mark.parametrize("batch", [False, True])
async def test_a_forged_token_for_a_ready_job_loses_nothing(make: Maker, batch: bool) -> None:
    """An ack under a token naming a ready job's entry (never delivered) is a lost lease, and the
    job is still delivered and acked once."""
    b = await make()
    for i in range(3):
        assert await b.enqueue(Job(id=f"r{i}", payload=i))
    forged = await _forged(b, "r2")
    if batch:
        assert await b.ack_many([forged]) == [False]
    else:
        with pytest.raises(LeaseLostError):
            await b.ack(forged)
    got = await b.dequeue_many(DequeueOptions(count=10, timeout=0))
    assert sorted(j.id for j in got) == ["r0", "r1", "r2"]
    assert await b.ack_many(got) == [True, True, True]
    assert await b.length() == 0


@pytest.mark.parametrize("batch", [False, True])
async def test_a_token_naming_a_missing_group_is_a_lost_lease(make: Maker, batch: bool) -> None:
    b = await make()
    assert await b.enqueue(Job(id="g1", payload=1))
    got = await b.dequeue(DequeueOptions(timeout=0))
    assert got is not None
    forged = await _forged(b, "g1", group="no-such-group")
    if batch:
        assert await b.ack_many([forged]) == [False]
    else:
        with pytest.raises(LeaseLostError):
            await b.ack(forged)
    calls = (lambda: b.nack(forged), lambda: b.extend_lease(forged, 5), lambda: b.move(forged, "elsewhere"))
    for call in calls:
        with pytest.raises(LeaseLostError):
            await call()
    await b.ack(got)  # the holder's lease was untouched
    assert await b.length() == 0


@pytest.mark.parametrize("where", ["a missing group", "the queue's group"])
async def test_a_due_lease_record_that_names_nothing_does_not_stop_the_queue(make: Maker, where: str) -> None:
    """Garbage in the leases zset, due now: members naming a group that does not exist, or
    members under the queue's own group that name no entry (one shaped as the mark of a take
    that is gone). The sweep drops them; takes go on."""
    b = await make()
    assert await b.enqueue(Job(id="flows", payload=1))
    if where == "a missing group":
        garbage = {f"no-such-group\x1f1-{i}": 0 for i in range(3)}
    else:
        garbage = {f"{b.group}\x1fnot-an-entry": 0, f"{b.group}\x1f+@gone:worker": 0, f"{b.group}\x1f": 0}
    await b.conn.client.zadd(b.skeys.leases, garbage)
    got = await b.dequeue(DequeueOptions(timeout=0))
    assert got is not None
    assert got.id == "flows"
    await b.ack(got)
    assert await b.conn.client.zmscore(b.skeys.leases, list(garbage)) == [None, None, None]

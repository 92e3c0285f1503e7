"""get_jobs (lookup by id, one read-only script per 500 ids) in every state, and garbage:
raised by a lookup, marked (never dropped) in the migration's holding area."""

from __future__ import annotations

import time

import anyio
import pytest

from queuestore import InvalidJobError, Job, JobState, SerializationError
from queuestore.backends.redis_lists.layout import CORRUPT_PREFIX as LISTS_CORRUPT_PREFIX
from queuestore.backends.redis_streams import RedisStreamsBackend
from queuestore.backends.redis_streams.layout import CORRUPT_PREFIX
from queuestore.backends.redis_streams.settle import settle_args

from .conftest import Maker

pytestmark = pytest.mark.anyio
GARBAGE = b"\xff\x00not a job"


def states(found: list[Job | None]) -> list[JobState | None]:
    return [j.state if j is not None else None for j in found]


async def moveout(backend: RedisStreamsBackend, job_id: str) -> None:
    """Step 1 of a cross-slot move only (as if the mover crashed right after it)."""
    args = settle_args(backend.store, "moveout", job_id, [backend.group, "", "", ""])
    res = await backend._script("move", "settle", backend.skeys.core(), args)
    assert int(res[0]) == 1


async def plant_ready_garbage(backend: RedisStreamsBackend, job_id: str) -> str:
    """A ready entry of an enqueued job whose body was damaged (indexed, so it is the job)."""
    raw = backend.conn.client
    await backend.enqueue(Job(id=job_id, payload="soon garbage"))
    old = (await raw.hget(backend.skeys.idx, job_id)).decode()
    eid = (await raw.xadd(backend.skeys.stream, {"j": job_id, "b": GARBAGE})).decode()
    await raw.hset(backend.skeys.idx, job_id, eid)
    await raw.xdel(backend.skeys.stream, old)
    return eid


async def test_get_jobs_reads_every_state_in_one_script_call(make: Maker) -> None:
    await every_state(make)


async def test_get_jobs_reads_every_state_on_the_cluster(make_cluster: Maker) -> None:
    await every_state(make_cluster)


async def every_state(make: Maker) -> None:
    b = await make(visibility_timeout=30)
    assert b.options.strict_keys
    t0 = time.time()
    await b.enqueue(Job(id="leased", payload=1, max_retries=0))
    leased = await b.dequeue()
    assert leased is not None
    await b.enqueue(Job(id="held-ready", payload=2))
    await b.enqueue(Job(id="acked", payload=3))
    await b.enqueue(Job(id="dead-held", payload=4))
    await b.enqueue(Job(id="dead", payload=5))
    await b.enqueue(Job(id="ready", payload=6, priority=3, metadata={"k": "v"}))
    await b.enqueue(Job(id="held-delayed", payload=7).delayed(30))
    await b.enqueue(Job(id="delayed", payload=8).delayed(60))
    await b.enqueue(Job(id="moving-delayed", payload=9).delayed(90))
    await b.enqueue(Job(id="gone-ttl", payload=10).with_ttl(0.05))
    assert [j.id for j in await b.migration_hold("m1", JobState.READY, 1)] == ["held-ready"]
    for job_id in ("acked", "dead-held", "dead"):
        got = await b.dequeue()
        assert got is not None
        assert got.id == job_id
        if job_id == "acked":
            await b.ack(got)
        else:
            await b.nack(got, requeue=False, error=f"bad {job_id}")
    assert [j.id for j in await b.migration_hold("m1", JobState.DEAD, 1)] == ["dead-held"]
    assert [j.id for j in await b.migration_hold("m1", JobState.DELAYED, 1)] == ["held-delayed"]
    await b.enqueue(Job(id="moving", payload=11))
    await moveout(b, "moving")
    await moveout(b, "moving-delayed")
    await anyio.sleep(0.1)  # gone-ttl is past its TTL (no sweep ran: it is still stored)

    ids = ["leased", "ready", "delayed", "dead", "held-ready", "held-delayed", "dead-held", "moving"]
    ids += ["moving-delayed", "acked", "gone-ttl", "never", "ready"]
    calls = b.script_set.calls["lookup"]
    found = await b.get_jobs(ids)
    assert b.script_set.calls["lookup"] == calls + 1
    assert states(found) == [
        JobState.IN_FLIGHT, JobState.READY, JobState.DELAYED, JobState.DEAD,
        JobState.READY, JobState.DELAYED, JobState.DEAD, JobState.READY,
        JobState.DELAYED, None, None, None, JobState.READY,
    ]  # fmt: skip
    by_id = {j.id: j for j in found if j is not None}
    assert [j.id for j in found if j is not None] == [i for i in ids if i in by_id]

    got = by_id["leased"]
    assert got.lease_token == leased.lease_token
    assert got.lease_deadline is not None
    assert leased.lease_deadline is not None
    assert abs(got.lease_deadline - leased.lease_deadline) < 1
    assert got.started_at is not None
    assert t0 - 1 <= got.started_at <= time.time()
    assert (got.attempt, got.retry_count) == (leased.attempt, leased.retry_count) == (1, 0)
    ready = by_id["ready"]
    assert (ready.payload, ready.priority, ready.metadata, ready.queue) == (6, 3, {"k": "v"}, b.queue)
    assert ready.lease_token is None
    assert by_id["delayed"].available_at is not None
    assert by_id["delayed"].available_at == pytest.approx(t0 + 60, abs=2)
    assert by_id["held-delayed"].available_at == pytest.approx(t0 + 30, abs=2)
    assert by_id["moving-delayed"].available_at == pytest.approx(t0 + 90, abs=2)
    assert by_id["moving"].payload == 11
    assert by_id["dead"].dead_reason == "bad dead"
    assert by_id["dead-held"].dead_reason == "bad dead-held"
    assert by_id["dead"].dead_at is not None
    assert by_id["held-ready"].payload == 2

    # a lookup writes nothing, and what it reported is what the store does next
    assert await b.migration_restore("m1") == 3
    after = await b.get_jobs(["held-ready", "held-delayed", "dead-held"])
    assert states(after) == [JobState.READY, JobState.DELAYED, JobState.DEAD]
    assert await b.conn.client.hlen(b.skeys.parked) == 4  # delayed x2, moving x2: no held records


async def test_get_jobs_batches_and_bad_arguments(make: Maker) -> None:
    b = await make()
    assert await b.get_jobs([]) == []
    jobs = [Job(id=f"j{i}", payload=i) for i in range(1200)]
    await b.enqueue_many(jobs)
    calls = b.script_set.calls["lookup"]
    found = await b.get_jobs([*reversed([j.id for j in jobs]), "nope"])
    assert b.script_set.calls["lookup"] == calls + 3  # 500 ids per script, pipelined
    assert [j.payload if j else None for j in found] == [*range(1199, -1, -1), None]
    with pytest.raises(InvalidJobError):
        await b.get_jobs("j1")
    with pytest.raises(InvalidJobError):
        await b.get_jobs([1])  # type: ignore[list-item]


async def test_get_jobs_names_garbage_instead_of_hiding_it(make: Maker) -> None:
    b = await make()
    raw = b.conn.client
    await b.enqueue(Job(id="fine", payload=1))
    await plant_ready_garbage(b, "bad-ready")
    await b.enqueue(Job(id="bad-delayed", payload=2).delayed(60))
    await raw.hset(b.skeys.parked, "bad-delayed", GARBAGE)
    await b.enqueue(Job(id="bad-meta", payload=3).delayed(60))
    await raw.hset(b.skeys.meta, "bad-meta", "{not json")
    did = (await raw.xadd(b.skeys.dead, {"j": "bad-dead", "b": GARBAGE})).decode()
    await raw.hset(b.skeys.idx, "bad-dead", "X" + did)
    await raw.hset(b.skeys.idx, "bad-index", "?what")
    bad = ["bad-ready", "bad-delayed", "bad-meta", "bad-dead", "bad-index"]
    with pytest.raises(SerializationError) as info:
        await b.get_jobs(["fine", *bad, "never"])
    msg = str(info.value)
    assert "5 stored entries" in msg
    for job_id in bad:
        assert repr(job_id) in msg
    assert "'fine'" not in msg
    assert states(await b.get_jobs(["fine", "never"])) == [JobState.READY, None]


async def test_corrupt_held_entries_are_returned_marked_with_their_ids(make: Maker) -> None:
    assert CORRUPT_PREFIX == LISTS_CORRUPT_PREFIX  # one marker for both Redis backends
    b = await make()
    raw = b.conn.client
    await b.enqueue(Job(id="good-1", payload=1))
    await plant_ready_garbage(b, "bad-ready")
    await b.enqueue(Job(id="good-2", payload=2))
    anon = (await raw.xadd(b.skeys.stream, {"what": "ever"})).decode()  # no job id at all
    held = await b.migration_hold("m1", JobState.READY, 10)
    assert [j.id for j in held] == ["good-1", "bad-ready", "good-2", f"garbage-{anon}"]
    assert [j.last_error for j in held[::2]] == [None, None]
    for job in (held[1], held[3]):
        assert job.last_error is not None
        assert job.last_error.startswith(CORRUPT_PREFIX)
        assert job.state is JobState.READY
    assert held[1].payload == GARBAGE
    assert "held entry" in held[1].last_error
    assert b.store.corrupt_entries == 2

    # the same from migration_held (a resumed run), in hold order
    again = await b.migration_held("m1")
    assert [(j.id, j.last_error) for j in again] == [(j.id, j.last_error) for j in held]
    # dead garbage without an id is held too (it used to be dropped), marked, under a name
    # of its own even when its entry id is the ready garbage's (entry ids are per stream: two
    # entries added in one millisecond share one)
    dead_anon = (await raw.xadd(b.skeys.dead, {"why": "x"}, id=anon)).decode()
    assert dead_anon == anon
    dead = await b.migration_hold("m1", JobState.DEAD, 10)
    assert [j.id for j in dead] == [f"garbage-dead-{dead_anon}"]
    assert dead[0].state is JobState.DEAD
    assert (dead[0].last_error or "").startswith(CORRUPT_PREFIX)

    # held jobs are found by id; held garbage is named, not hidden
    assert states(await b.get_jobs(["good-1", "good-2"])) == [JobState.READY, JobState.READY]
    with pytest.raises(SerializationError, match="bad-ready"):
        await b.get_jobs(["good-1", "bad-ready"])

    # release forgets the sound ones (and their parked records); the garbage stays held
    assert await b.migration_release("m1", ["good-1", "good-2"]) == 2
    assert await b.get_jobs(["good-1", "good-2"]) == [None, None]
    assert sorted(k.decode() for k in await raw.hkeys(b.skeys.parked)) == sorted(
        ["bad-ready", f"garbage-{anon}", f"garbage-dead-{dead_anon}"]
    )
    assert [j.id for j in await b.migration_held("m1")] == [
        "bad-ready",
        f"garbage-{anon}",
        f"garbage-dead-{dead_anon}",
    ]

    # a rollback puts the garbage back where it was, by id, and drops the parked copies
    assert await b.migration_restore("m1") == 3
    assert await raw.hlen(b.skeys.parked) == 0
    assert await raw.xlen(b.skeys.held("m1")) == 0
    assert (await raw.hget(b.skeys.idx, f"garbage-dead-{dead_anon}")).startswith(b"X")
    with pytest.raises(SerializationError, match="bad-ready"):
        await b.get_jobs(["bad-ready"])
    # dequeue still dead-letters the ready garbage, by its id
    assert await b.dequeue() is None
    dead_ids = {j.id for j in await b.get_jobs(["bad-ready", f"garbage-{anon}"]) if j is not None}
    assert dead_ids == {"bad-ready", f"garbage-{anon}"}

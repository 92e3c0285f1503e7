"""The migration record SPI (``migration_record``): one owner lease per queue, on the store's
clock, shared by every backend instance on the same store; take-over once it ran out;
release with a retention."""

from __future__ import annotations

import time

import anyio
import pytest

from queuestore import InvalidJobError, Job, QueueBackend, QueueMovedError

from .conftest import BackendMaker

pytestmark = pytest.mark.anyio


async def test_one_owner_per_queue_across_backend_instances(
    backend: QueueBackend, make_backend: BackendMaker
) -> None:
    other = await make_backend(backend.queue)  # another client of the same store and queue
    empty = await backend.migration_record("read")
    assert empty.granted
    assert empty.fields == {}
    assert abs(empty.now - time.time()) < 5  # the store's clock, in epoch seconds

    mine = await backend.migration_record(
        "claim", owner="A", lease=30, fields={"mid": "m1", "phase": "copying"}
    )
    assert mine.granted
    assert mine.fields["owner"] == "A"
    assert mine.fields["mid"] == "m1"
    assert float(mine.fields["deadline"]) == pytest.approx(mine.now + 30, abs=0.01)

    refused = await other.migration_record("claim", owner="B", lease=30, fields={"mid": "m2"})
    assert not refused.granted
    assert refused.fields["owner"] == "A"
    assert refused.fields["mid"] == "m1"
    assert not (await other.migration_record("update", owner="B", lease=30, fields={"phase": "x"})).granted
    assert not (await other.migration_record("release", owner="B")).granted
    assert not (await other.migration_record("update", owner="", lease=30)).granted

    renewed = await backend.migration_record("update", owner="A", lease=30, fields={"phase": "verifying"})
    assert renewed.granted
    assert renewed.fields["phase"] == "verifying"
    seen = await other.migration_record("read")
    assert seen.fields["phase"] == "verifying"
    assert seen.fields["owner"] == "A"
    again = await backend.migration_record("claim", owner="A", lease=30, fields={})
    assert again.granted  # the holder claiming again keeps it


async def test_an_expired_owner_lease_is_taken_over(
    backend: QueueBackend, make_backend: BackendMaker
) -> None:
    other = await make_backend(backend.queue)
    assert (await backend.migration_record("claim", owner="A", lease=0.3, fields={"mid": "m1"})).granted
    assert not (await other.migration_record("claim", owner="B", lease=5, fields={})).granted
    await anyio.sleep(0.4)
    took = await other.migration_record("claim", owner="B", lease=5, fields={"phase": "copying"})
    assert took.granted
    assert took.fields["owner"] == "B"
    assert took.fields["mid"] == "m1"
    lost = await backend.migration_record("update", owner="A", lease=5, fields={"phase": "stale"})
    assert not lost.granted
    assert (await backend.migration_record("read")).fields["phase"] == "copying"


async def test_release_gives_the_lease_up_and_keeps_the_record_for_the_retention(
    backend: QueueBackend, make_backend: BackendMaker
) -> None:
    other = await make_backend(backend.queue)
    assert (await backend.migration_record("claim", owner="A", lease=30, fields={"home": "h"})).granted
    done = await backend.migration_record("release", owner="A", retention=0.6, fields={"phase": "completed"})
    assert done.granted
    assert "owner" not in done.fields
    assert "deadline" not in done.fields
    assert done.fields["home"] == "h"
    assert done.fields["phase"] == "completed"
    assert (await other.migration_record("read")).fields["home"] == "h"
    await anyio.sleep(0.8)
    assert (await other.migration_record("read")).fields == {}


async def test_release_without_retention_keeps_the_record_and_a_field_can_be_removed(
    backend: QueueBackend,
) -> None:
    assert (
        await backend.migration_record("claim", owner="A", lease=30, fields={"home": "h", "x": "1"})
    ).granted
    assert (await backend.migration_record("update", owner="A", lease=30, fields={"home": ""})).granted
    assert (await backend.migration_record("release", owner="A", retention=0)).granted
    await anyio.sleep(0.2)
    assert (await backend.migration_record("read")).fields == {"x": "1"}
    # a new claim after a retention was set keeps the record for good again
    assert (await backend.migration_record("claim", owner="B", lease=30, fields={})).granted


async def test_an_unknown_record_operation_is_a_typed_error(backend: QueueBackend) -> None:
    with pytest.raises(InvalidJobError) as err:
        await backend.migration_record("drop")  # type: ignore[arg-type]
    assert err.value.field == "op"


async def test_a_sealed_queue_refuses_every_storing_call_and_stores_nothing(
    backend: QueueBackend, make_backend: BackendMaker
) -> None:
    other = await make_backend(backend.queue)  # another client of the same queue and store
    home = '{"type":"redis-streams","url":"redis://elsewhere:6379"}'
    assert (await backend.migration_record("claim", owner="A", lease=30, fields={"home": home})).granted
    jobs = [Job(payload=i) for i in range(3)]
    with pytest.raises(QueueMovedError) as err:
        await other.enqueue(jobs[0])
    assert err.value.home == home
    assert err.value.code == "QUEUE_MOVED"
    with pytest.raises(QueueMovedError):
        await other.enqueue_many(jobs)
    with pytest.raises(QueueMovedError):
        await other.import_jobs(jobs)
    assert await other.get_jobs([j.id for j in jobs]) == [None, None, None]
    assert await other.length() == 0

    assert (await backend.migration_record("update", owner="A", lease=30, fields={"home": ""})).granted
    assert await other.enqueue_many(jobs) == [True, True, True]  # the seal lifted: stored again


async def test_a_move_or_redrive_into_a_sealed_queue_is_refused_and_the_job_stays(
    backend: QueueBackend, make_backend: BackendMaker
) -> None:
    # on a standalone server the two queues share the store (one script); on a cluster they
    # are on different slots (the multi-step move): both refuse and keep the job where it was
    sealed_queue = make_backend.other_queue("sealed")
    sealed = await make_backend(sealed_queue)
    home = '{"type":"redis-lists"}'
    claim = await sealed.migration_record("claim", owner="A", lease=30, fields={"home": home})
    assert claim.granted
    ready, dead = Job(payload="r"), Job(payload="d", max_retries=0)
    assert await backend.enqueue_many([dead]) == [True]
    got = await backend.dequeue()
    assert got is not None
    assert got.id == dead.id
    await backend.nack(got, requeue=False)
    assert await backend.enqueue(ready)
    with pytest.raises(QueueMovedError) as err:
        await backend.move(ready.id, sealed_queue)
    assert err.value.home == home
    with pytest.raises(QueueMovedError):
        await backend.redrive([dead.id], to_queue=sealed_queue)
    states = [j.state if j else None for j in await backend.get_jobs([ready.id, dead.id])]
    assert states == ["ready", "dead"]
    nxt = await backend.peek(0)  # ready to be served, not parked half-way
    assert nxt is not None
    assert nxt.id == ready.id
    assert await backend.length() == 1
    assert await sealed.get_jobs([ready.id, dead.id]) == [None, None]
    # the seal lifted: the same calls store in the queue
    assert (await sealed.migration_record("release", owner="A", fields={"home": ""})).granted
    await backend.move(ready.id, sealed_queue)
    assert await backend.redrive([dead.id], to_queue=sealed_queue) == 1
    states = [j.state if j else None for j in await sealed.get_jobs([ready.id, dead.id])]
    assert states == ["ready", "ready"]
    assert await backend.get_jobs([ready.id, dead.id]) == [None, None]

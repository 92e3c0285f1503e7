"""Ready order: a job is ready from the moment it comes due, and ready jobs are delivered in
the order of that moment (within a priority; higher priority first).

The memory backend is the reference: every call first brings the queue up to the clock --
expired leases (in deadline order), then due delayed jobs (in due order), ties in the order
they were leased or stored -- and only then stores, requeues or leases. A delayed job whose
time came, or a lease that expired, before a later enqueue is therefore delivered before the
later job, whichever call notices it first. Delays and leases here are 0.3 s long; the tests
wait until the server's clock is past them (the servers run on this host), not a fixed time.
"""

from __future__ import annotations

import time

import anyio
import pytest

from queuestore import DequeueOptions, Job, QueueBackend

from .conftest import BackendMaker

pytestmark = pytest.mark.anyio

SHORT = 0.3


async def _until(moment: float) -> None:
    """Wait until the clock is past ``moment`` (plus a little, for rounding on the server)."""
    while time.time() < moment + 0.02:
        await anyio.sleep(min(0.05, max(0.005, moment + 0.02 - time.time())))


async def _drain(backend: QueueBackend) -> list[str]:
    """Dequeue (and ack) everything ready, one job at a time; the payloads in order."""
    out: list[str] = []
    while (job := await backend.dequeue(DequeueOptions(timeout=0))) is not None:
        out.append(str(job.payload))
        await backend.ack(job)
    return out


def _job(name: str, **fields: object) -> Job:
    return Job(payload=name, **fields)  # type: ignore[arg-type]


async def test_a_delayed_job_that_came_due_goes_before_a_later_enqueue(make_backend: BackendMaker) -> None:
    backend = await make_backend()
    due = time.time() + SHORT
    await backend.enqueue(_job("t0"))
    await backend.enqueue(_job("t1"))
    await backend.enqueue(_job("d", available_at=due))
    await _until(due)
    await backend.enqueue(_job("t5"))
    assert await _drain(backend) == ["t0", "t1", "d", "t5"]


async def test_an_expired_lease_goes_before_a_later_enqueue(make_backend: BackendMaker) -> None:
    backend = await make_backend(visibility_timeout=SHORT)
    await backend.enqueue(_job("a", max_retries=3))
    await backend.enqueue(_job("t1"))
    leased = await backend.dequeue()
    assert leased is not None
    assert leased.payload == "a"
    assert leased.lease_deadline is not None
    await _until(leased.lease_deadline)
    await backend.enqueue(_job("t5"))
    assert await _drain(backend) == ["t1", "a", "t5"]


async def test_expired_leases_of_one_dequeue_come_back_in_lease_order(make_backend: BackendMaker) -> None:
    backend = await make_backend(visibility_timeout=SHORT)
    names = ["z", "m", "a", "q"]  # ids chosen so that id order is not lease order
    await backend.enqueue_many([Job(id=f"{n}-{i}", payload=n) for i, n in enumerate(names)])
    leased = await backend.dequeue_many(DequeueOptions(count=4))
    assert [j.payload for j in leased] == names
    deadline = max(j.lease_deadline or 0.0 for j in leased)
    await _until(deadline)
    await backend.enqueue(_job("t5"))
    assert await _drain(backend) == [*names, "t5"]


async def test_ready_order_within_each_priority(make_backend: BackendMaker) -> None:
    backend = await make_backend(visibility_timeout=SHORT)
    if not backend.capabilities().prioritization:
        pytest.skip("the backend declares prioritization=False")
    due = time.time() + SHORT
    await backend.enqueue(_job("lo-lease", priority=1, max_retries=3))
    leased = await backend.dequeue()
    assert leased is not None
    assert leased.lease_deadline is not None
    await backend.enqueue(_job("hi0", priority=7))
    await backend.enqueue(_job("lo0", priority=1))
    await backend.enqueue(_job("hi-d", priority=7, available_at=due))
    await backend.enqueue(_job("lo-d", priority=1, available_at=due))
    await _until(max(due, leased.lease_deadline))
    await backend.enqueue(_job("lo5", priority=1))
    await backend.enqueue(_job("hi5", priority=7))
    assert await _drain(backend) == ["hi0", "hi-d", "hi5", "lo0", "lo-lease", "lo-d", "lo5"]


async def test_batch_enqueue_after_due_jobs_keeps_ties_in_store_order(make_backend: BackendMaker) -> None:
    backend = await make_backend()
    due = time.time() + SHORT
    # two delayed jobs due at the same instant, ids in the opposite order of the batch
    first = _job("d1", id="zz-first", available_at=due)
    second = _job("d2", id="aa-second", available_at=due)
    await backend.enqueue_many([_job("t0"), first, _job("t1"), second])
    await _until(due)
    await backend.enqueue_many([_job("t5"), _job("t6")])
    assert await _drain(backend) == ["t0", "t1", "d1", "d2", "t5", "t6"]


async def test_a_delayed_job_that_came_due_goes_before_a_later_nack(make_backend: BackendMaker) -> None:
    backend = await make_backend()
    await backend.enqueue(_job("n", max_retries=3))
    held = await backend.dequeue()
    assert held is not None
    due = time.time() + SHORT
    await backend.enqueue(_job("d", available_at=due))
    await _until(due)
    await backend.nack(held, requeue=True)
    assert await _drain(backend) == ["d", "n"]


async def test_a_delayed_job_that_came_due_goes_before_a_job_moved_in(make_backend: BackendMaker) -> None:
    source = await make_backend()
    target_queue = make_backend.other_queue()
    target = await make_backend(target_queue)
    due = time.time() + SHORT
    await target.enqueue(_job("d", available_at=due))
    moving = _job("m")
    await source.enqueue(moving)
    await _until(due)
    await source.move(moving.id, target_queue)
    assert await _drain(target) == ["d", "m"]


async def test_a_delayed_job_that_came_due_goes_before_a_redriven_job(make_backend: BackendMaker) -> None:
    backend = await make_backend()
    await backend.enqueue(_job("x", max_retries=0))
    poisoned = await backend.dequeue()
    assert poisoned is not None
    await backend.nack(poisoned, requeue=False, error="poison")
    due = time.time() + SHORT
    await backend.enqueue(_job("d", available_at=due))
    await _until(due)
    assert await backend.redrive([poisoned.id]) == 1
    assert await _drain(backend) == ["d", "x"]

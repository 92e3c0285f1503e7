"""The concurrent load of a fault run: producers and consumers that write every call's outcome
into a :class:`~.ledger.Ledger`.

A call that raises a :class:`~queuestore.QueueStoreError` other than a definite answer has an
unknown outcome; the caller does what ``docs/reliability.md`` says: it calls again (the same job
id for an enqueue, the same ``Job`` and its lease token for a settle). A definite answer after an
unknown one resolves it: ``False`` from an enqueue or ``JobNotFoundError`` from an ack then mean
"the earlier try landed"; without an unknown one before, they are wrong outcomes.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import anyio

from queuestore import (
    DequeueOptions,
    InvalidJobError,
    Job,
    JobNotFoundError,
    LeaseLostError,
    QueueBackend,
    QueueStoreError,
)

from .ledger import ACTIONS, Ledger

__all__ = ["LoadPlan", "consume", "produce"]

#: what consumers do with a delivered job: mostly ack, some requeue, a few dead-letter
WEIGHTS = (0.8, 0.12, 0.08)
RETRY_PAUSE = 0.02


@dataclass(frozen=True)
class LoadPlan:
    """How much load one process puts on the queue."""

    producers: int = 3
    consumers: int = 3
    jobs_per_producer: int = 80
    #: mean pause between a producer's enqueues: spreads the load over the faults
    pace: float = 0.05
    #: cancel dequeues at random points (``anyio.move_on_after``)
    cancel_storm: bool = False
    #: give up retrying one call after this long (its outcome then stays unknown)
    call_deadline: float = 30.0
    #: stop consuming this long after the start, whatever is left
    run_deadline: float = 60.0


def _batching(backend: QueueBackend) -> bool:
    return backend.capabilities().batch_operations


async def produce(
    backend: QueueBackend, ledger: Ledger, ids: list[str], rng: random.Random, stop_at: float, pace: float
) -> None:
    """Enqueue ``ids`` one by one or in small batches, retrying unknown outcomes, until all are
    enqueued or ``stop_at`` (monotonic) passes."""
    batching = _batching(backend)
    pos = 0
    while pos < len(ids) and time.monotonic() < stop_at:
        size = rng.choice((2, 5)) if batching and rng.random() < 0.3 else 1
        chunk = ids[pos : pos + size]
        pos += size
        jobs = [Job(id=job_id, payload={"n": job_id}, max_retries=1000) for job_id in chunk]
        for job_id in chunk:
            ledger.announce(job_id)
        results: list[bool] | None = None
        after_unknown = False
        give_up = min(time.monotonic() + 30.0, stop_at)
        while results is None and time.monotonic() < give_up:
            ledger.calls += 1
            try:
                if len(jobs) == 1:
                    results = [await backend.enqueue(jobs[0])]
                else:
                    results = await backend.enqueue_many(jobs)
            except InvalidJobError:
                raise
            except QueueStoreError as exc:
                ledger.failed(exc)
                after_unknown = True
                await anyio.sleep(RETRY_PAUSE)
        for i, job_id in enumerate(chunk):
            ledger.enqueued(job_id, None if results is None else results[i], after_unknown)
        await anyio.sleep(rng.uniform(0, 2 * pace * size))


async def _settle(backend: QueueBackend, ledger: Ledger, job: Job, action: str, deadline: float) -> None:
    after_unknown = False
    outcome = "unknown"
    while True:
        ledger.calls += 1
        try:
            if action == "ack":
                await backend.ack(job)
            elif action == "requeue":
                await backend.nack(job, requeue=True)
            else:
                await backend.nack(job, requeue=False, error="fault suite: dead-lettered on purpose")
            outcome = "ok"
            break
        except (JobNotFoundError, LeaseLostError) as exc:
            if after_unknown:
                outcome = "ok"  # the earlier try landed: the lease is gone because of it
            else:
                ledger.wrong.append(
                    f"{action} {job.id} (attempt {job.attempt}): {type(exc).__name__} on a valid lease"
                )
            break
        except QueueStoreError as exc:
            ledger.failed(exc)
            after_unknown = True
            if time.monotonic() > deadline:
                break
            await anyio.sleep(RETRY_PAUSE)
    ledger.settled(job, action, outcome)


async def consume(
    backend: QueueBackend,
    ledger: Ledger,
    rng: random.Random,
    producers_done: anyio.Event,
    plan: LoadPlan,
    stop_at: float,
) -> None:
    """Take jobs and settle each one (ack, requeue or dead-letter) until the producers are done
    and the queue stays empty, or ``stop_at`` (monotonic) passes."""
    batching = _batching(backend)
    idle = 0
    while time.monotonic() < stop_at and not (producers_done.is_set() and idle >= 3):
        count = 3 if batching and rng.random() < 0.25 else 1
        options = DequeueOptions(timeout=0.1, count=count)
        got: list[Job] = []
        ledger.calls += 1
        try:
            cancel = plan.cancel_storm and rng.random() < 0.5
            with anyio.move_on_after(rng.uniform(0, 0.03) if cancel else None) as scope:
                if count == 1:
                    one = await backend.dequeue(options)
                    got = [] if one is None else [one]
                else:
                    got = await backend.dequeue_many(options)
        except QueueStoreError as exc:
            ledger.failed(exc)
            ledger.orphan_risk += 1  # it may have leased jobs nobody will see
            await anyio.sleep(RETRY_PAUSE)
            continue
        if scope.cancelled_caught:
            ledger.cancelled += 1
            continue
        idle = 0 if got or not producers_done.is_set() else idle + 1
        for job in got:
            ledger.delivered(job)
        for job in got:
            action = rng.choices(ACTIONS, WEIGHTS)[0]
            await _settle(backend, ledger, job, action, time.monotonic() + plan.call_deadline)

"""The fault suite's load and accounting, end to end, against a saboteur: a memory backend
wrapped so that it breaks one promise. Each broken promise must show up in the count it belongs
to; the unbroken backend must come out clean. (The real backends are in test_fault_suite.py.)"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from typing import Any, cast

import pytest

from queuestore import DequeueOptions, Job, QueueBackend

from .ledger import Accounting, Ledger, account
from .load import LoadPlan
from .scenarios import apply_load, open_backend

pytestmark = pytest.mark.anyio

PLAN = LoadPlan(producers=2, consumers=2, jobs_per_producer=30, pace=0.001, run_deadline=20.0)


class Saboteur:
    """Delegates to a real memory backend, except for the one promise ``breaks`` names."""

    def __init__(self, inner: QueueBackend, breaks: str) -> None:
        self.inner, self.breaks, self.calls = inner, breaks, 0
        self.last: Job | None = None

    def capabilities(self) -> Any:
        return self.inner.capabilities()

    def _now(self) -> bool:
        self.calls += 1
        return self.calls % 7 == 0

    async def enqueue(self, job: Job) -> bool:
        stored = await self.inner.enqueue(job)
        if self.breaks == "enqueue-twice" and self._now():
            return await self.inner.enqueue(job)  # a blind retry of a call that landed
        return stored

    async def enqueue_many(self, jobs: list[Job]) -> list[bool]:
        return [await self.enqueue(job) for job in jobs]

    async def dequeue(self, options: DequeueOptions | None = None) -> Job | None:
        if self.breaks == "redeliver" and self.last is not None and self._now():
            return self.last  # the same lease handed to a second holder
        got = await self.inner.dequeue(options)
        self.last = got or self.last
        return got

    async def dequeue_many(self, options: DequeueOptions | None = None) -> list[Job]:
        got = await self.dequeue(options)
        return [] if got is None else [got]

    async def ack(self, job: Job) -> None:
        if self.breaks == "ack-lies" and self._now():
            return  # says acked, did nothing
        await self.inner.ack(job)

    async def nack(self, job: Job, requeue: bool = True, **kw: Any) -> None:
        await self.inner.nack(job, requeue, **kw)


async def _run(breaks: str) -> Accounting:
    inner = await open_backend("memory", None, f"acct-{uuid.uuid4().hex[:8]}:")
    try:
        backend = cast(QueueBackend, Saboteur(inner, breaks))
        ledger = Ledger()
        await apply_load((backend, backend), ledger, PLAN, "a", random.Random(3))
        ids = sorted(ledger.jobs)
        states = dict(zip(ids, await inner.get_jobs(ids), strict=True))  # type: ignore[attr-defined]
        drained: Counter[str] = Counter()
        while (got := await inner.dequeue(DequeueOptions(timeout=0))) is not None:
            drained[got.id] += 1
            await inner.ack(got)
        return account(ledger, states, drained)
    finally:
        await inner.aclose()


async def test_an_honest_backend_comes_out_clean() -> None:
    a = await _run("nothing")
    assert a.jobs == PLAN.producers * PLAN.jobs_per_producer
    assert a.problems() == []


async def test_a_blind_retry_of_an_enqueue_is_a_wrong_outcome() -> None:
    a = await _run("enqueue-twice")
    assert a.wrong
    assert all("returned False for a fresh id" in p for p in a.wrong)
    assert a.lost == []


async def test_a_lease_handed_to_two_holders_is_a_duplicate() -> None:
    a = await _run("redeliver")
    assert a.duplicated
    assert any("delivered 2 times, given back 0 times" in p for p in a.duplicated)


async def test_an_ack_that_did_nothing_is_a_wrong_outcome() -> None:
    a = await _run("ack-lies")
    assert any("ack returned, but the job is in_flight" in p for p in a.wrong)

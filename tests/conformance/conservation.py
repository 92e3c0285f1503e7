"""Conservation checked job by job, through the public API only.

:func:`snapshot` walks every state with ``iter(IterOptions(states=(state,)))``
and fails if a job shows up twice (in one state or in two). A :class:`Ledger`
records what a test did (enqueued, acked, expired) and what it expects of each
job, and :meth:`Ledger.check` asserts that every enqueued job is in exactly one
state or gone for a counted reason, that nothing unknown is stored, and that
``length()`` and ``stats()`` agree with the walk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import pytest

from queuestore import IterOptions, Job, JobState, QueueBackend

ALL_STATES = (JobState.READY, JobState.DELAYED, JobState.IN_FLIGHT, JobState.DEAD)


def require(backend: QueueBackend, capability: str) -> None:
    """Skip unless the backend declares ``capability`` -- the only reason a conformance test skips."""
    if not getattr(backend.capabilities(), capability):
        pytest.skip(f"backend declares capabilities().{capability} = False")


async def snapshot(backend: QueueBackend, page: int = 7) -> dict[str, Job]:
    """Every stored job of the backend's queue by id (``job.state`` = where it was found).

    The small page makes the walk cross page boundaries even for short queues.
    """
    seen: dict[str, Job] = {}
    for state in ALL_STATES:
        async for job in backend.iter(IterOptions(states=(state,), count=page)):
            assert job.id not in seen, f"job {job.id} found twice: in {seen[job.id].state} and in {state}"
            assert job.state == state, f"job {job.id} walked as {state} but says {job.state}"
            seen[job.id] = job
    return seen


async def ids_in(backend: QueueBackend, state: JobState) -> list[str]:
    """Ids of the jobs in one state, in walk order."""
    return [j.id async for j in backend.iter(IterOptions(states=(state,), count=50))]


class Ledger:
    """What a test did to one queue, and what it expects of each job."""

    def __init__(self) -> None:
        self.enqueued: list[str] = []
        self.gone: dict[str, str] = {}  # id -> why ("acked", "expired", "moved")
        self.expected: dict[str, JobState] = {}

    def add(self, jobs: Iterable[Job | str], state: JobState | None = JobState.READY) -> None:
        """Record enqueued jobs (expected in ``state``; None: don't pin the state)."""
        for job in jobs:
            job_id = job if isinstance(job, str) else job.id
            self.enqueued.append(job_id)
            self.expect(job_id, state)

    def expect(self, job_id: str, state: JobState | None) -> None:
        """Expect a job to be in ``state`` now (None: stored, any state)."""
        self.gone.pop(job_id, None)
        if state is None:
            self.expected.pop(job_id, None)
        else:
            self.expected[job_id] = state

    def remove(self, job_id: str, why: str = "acked") -> None:
        """Record that a job left the queue (acked, expired, moved away)."""
        self.gone[job_id] = why
        self.expected.pop(job_id, None)

    async def check(self, backend: QueueBackend) -> dict[str, Job]:
        """Assert conservation for every enqueued job; return the snapshot."""
        snap = await snapshot(backend)
        unknown = set(snap) - set(self.enqueued)
        assert not unknown, f"stored jobs nobody enqueued: {sorted(unknown)}"
        for job_id in dict.fromkeys(self.enqueued):
            if job_id in self.gone:
                assert job_id not in snap, (
                    f"job {job_id} was {self.gone[job_id]} but is still {snap[job_id].state}"
                )
                continue
            assert job_id in snap, f"job {job_id} was lost (expected {self.expected.get(job_id, 'stored')})"
            want = self.expected.get(job_id)
            if want is not None:
                assert snap[job_id].state == want, f"job {job_id} is {snap[job_id].state}, expected {want}"
        counts = Counter(job.state for job in snap.values())
        stats = await backend.stats()
        got = (stats.queue_depth, stats.delayed, stats.in_flight, stats.dead)
        want_counts = tuple(counts[s] for s in ALL_STATES)
        assert got == want_counts, f"stats (ready, delayed, in flight, dead) {got} != walked {want_counts}"
        assert await backend.length() == counts[JobState.READY] + counts[JobState.DELAYED]
        return snap

"""A reference model of one queue (plus the queue jobs are moved to), in whole time units.

It mirrors the documented semantics of the memory backend: ready jobs by
(priority desc, arrival), an expired lease back to the tail of its priority with
retry_count + 1 or dead past max_retries, delayed jobs promoted when due, waiting
jobs past ``expires_at`` dropped. A sweep reclaims leases (by deadline), then
promotes delayed jobs (by due time), then drops expired waiting jobs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from queuestore import DuplicateJobError, JobNotFoundError, JobState, LeaseLostError, QueueStoreError


@dataclass
class MJob:
    """What the model knows about one stored job."""

    id: str
    priority: int
    max_retries: int
    expires_at: float | None
    state: JobState = JobState.READY
    available_at: float | None = None
    retry_count: int = 0
    attempt: int = 0
    token: str | None = None
    deadline: float | None = None
    seq: int = 0


@dataclass
class Model:
    """The expected state of the source queue and of the ids moved to the target queue."""

    now: float
    visibility: float
    idem_window: float
    jobs: dict[str, MJob] = field(default_factory=dict)
    moved: dict[str, float | None] = field(default_factory=dict)  # id -> expires_at, in the target
    idem: dict[str, float] = field(default_factory=dict)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def _place(self, job: MJob, state: JobState) -> None:
        job.state, job.seq = state, next(self._seq)

    def _wait_or_ready(self, job: MJob) -> None:
        if job.available_at is not None and job.available_at > self.now:
            self._place(job, JobState.DELAYED)
        else:
            job.available_at = None
            self._place(job, JobState.READY)

    def _retry(self, job: MJob, delay: float) -> None:
        job.token = job.deadline = None
        if job.retry_count + 1 > job.max_retries:
            self._place(job, JobState.DEAD)
            return
        job.retry_count += 1
        job.available_at = self.now + delay if delay > 0 else None
        self._wait_or_ready(job)

    def in_state(self, state: JobState) -> list[MJob]:
        """Jobs in ``state``, in the backend's walk order for that state."""
        jobs = [j for j in self.jobs.values() if j.state == state]
        if state == JobState.READY:
            return sorted(jobs, key=lambda j: (-j.priority, j.seq))
        if state == JobState.DELAYED:
            return sorted(jobs, key=lambda j: (j.available_at or 0.0, j.seq))
        if state == JobState.IN_FLIGHT:
            return sorted(jobs, key=lambda j: (j.deadline or 0.0, j.seq))
        return sorted(jobs, key=lambda j: j.seq)

    def advance(self, units: float) -> None:
        """Let time pass, then sweep as the backend does."""
        self.now += units
        for job in self.in_state(JobState.IN_FLIGHT):
            if job.deadline is not None and job.deadline <= self.now:
                self._retry(job, 0.0)
        for job in self.in_state(JobState.DELAYED):
            if job.available_at is not None and job.available_at <= self.now:
                job.available_at = None
                self._place(job, JobState.READY)
        for job in list(self.jobs.values()):
            waiting = job.state in (JobState.READY, JobState.DELAYED)
            if waiting and job.expires_at is not None and job.expires_at <= self.now:
                del self.jobs[job.id]
        self.idem = {k: until for k, until in self.idem.items() if until > self.now}
        self.moved = {k: exp for k, exp in self.moved.items() if exp is None or exp > self.now}

    def enqueue(self, job: MJob, key: str | None) -> bool:
        """Expected result of enqueueing ``job``."""
        if job.id in self.jobs or (key is not None and key in self.idem):
            return False
        if key is not None:
            self.idem[key] = self.now + self.idem_window
        self.jobs[job.id] = job
        self._wait_or_ready(job)
        if job.expires_at is not None and job.expires_at <= self.now:
            del self.jobs[job.id]  # the backend drops it at its next sweep, before anything is visible
        return True

    def dequeue(self) -> MJob | None:
        """The job the next dequeue must return (its token is filled in by the caller)."""
        ready = self.in_state(JobState.READY)
        if not ready:
            return None
        job = ready[0]
        job.attempt += 1
        job.deadline = self.now + self.visibility
        self._place(job, JobState.IN_FLIGHT)
        return job

    def leased(self, job_id: str, token: str | None) -> MJob:
        """The in-flight job an ack/nack/extend acts on, or the error the backend must raise."""
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        if token is not None and (job.state != JobState.IN_FLIGHT or job.token != token):
            raise LeaseLostError(job_id)
        if job.state != JobState.IN_FLIGHT:
            raise JobNotFoundError(job_id)
        return job

    def ack(self, job_id: str, token: str | None) -> None:
        self.leased(job_id, token)
        del self.jobs[job_id]

    def nack(self, job_id: str, token: str | None, requeue: bool, delay: float) -> None:
        job = self.leased(job_id, token)
        if requeue:
            self._retry(job, delay)
            waiting = job.state in (JobState.READY, JobState.DELAYED)
            if waiting and job.expires_at is not None and job.expires_at <= self.now:
                del self.jobs[job_id]  # past its TTL: the backend drops it at its next sweep
        else:
            job.token = job.deadline = None
            self._place(job, JobState.DEAD)

    def extend(self, job_id: str, token: str | None, units: float) -> None:
        job = self.leased(job_id, token)
        job.deadline = self.now + units  # keeps its seq: ties are broken by first lease

    def move(self, job_id: str, token: str | None) -> None:
        if job_id not in self.jobs and job_id in self.moved:
            return  # a retried move: no-op
        if job_id not in self.jobs:
            raise JobNotFoundError(job_id)
        job = self.jobs[job_id]
        if token is not None or job.state == JobState.IN_FLIGHT:
            self.leased(job_id, token)
        if job_id in self.moved:
            raise DuplicateJobError(job_id)
        del self.jobs[job_id]
        if job.expires_at is None or job.expires_at > self.now:  # else the target drops it at once
            self.moved[job_id] = job.expires_at


def outcome(exc: BaseException | None) -> type[QueueStoreError] | None:
    """The error class an operation ended with (None: it succeeded)."""
    if exc is None:
        return None
    assert isinstance(exc, QueueStoreError), f"unexpected error {exc!r}"
    return type(exc)

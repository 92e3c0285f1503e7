"""Pieces of the routing proxy that work over both sides: leasing from one then the other,
finding the side that holds a lease (a foreign or stale token is a lost lease), peeking
over both, their common capabilities, summed stats and the worse health."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import msgspec

from queuestore._job import Job
from queuestore._models import BackendCapabilities, BackendStats, DequeueOptions, HealthLevel, HealthStatus
from queuestore.abc import QueueBackend
from queuestore.errors import InvalidJobError, JobNotFoundError, LeaseLostError
from queuestore.migration._protocol import spi

__all__ = [
    "common_capabilities",
    "lease_checked",
    "on_either",
    "peek_over",
    "summed_stats",
    "take_first",
    "worse_health",
]

T = TypeVar("T")
_RANK = {HealthLevel.HEALTHY: 0, HealthLevel.DEGRADED: 1, HealthLevel.UNHEALTHY: 2}


async def lease_checked(
    job_id: str, token: str | None, call: Callable[[QueueBackend], Awaitable[T]], backend: QueueBackend
) -> T:
    """``call(backend)``, with a lease token ``backend`` did not issue turned into a LeaseLostError.

    Raises:
        LeaseLostError: ``backend`` refused the token as not its own (InvalidJobError on
            ``lease_token``), or as stale.
        QueueStoreError: whatever else ``call`` raises.
    """
    try:
        return await call(backend)
    except InvalidJobError as exc:
        if token is not None and exc.field == "lease_token":
            raise LeaseLostError(
                job_id, f"lease on job {job_id!r} was lost (it moved to {backend.name!r})"
            ) from exc
        raise


async def on_either(
    job_id: str,
    token: str | None,
    call: Callable[[QueueBackend], Awaitable[T]],
    first: QueueBackend,
    second: QueueBackend,
) -> T:
    """``call`` on ``first``, then on ``second`` when ``first`` does not know the job.

    Raises:
        LeaseLostError: a foreign token (see :func:`lease_checked`), or ``job`` carries a
            lease token and neither side has it in flight while one of them stores it.
        JobNotFoundError: neither side knows the job.
        QueueStoreError: whatever else ``call`` raises.
    """
    try:
        return await lease_checked(job_id, token, call, first)
    except JobNotFoundError:
        pass
    try:
        return await lease_checked(job_id, token, call, second)
    except JobNotFoundError:
        if token is None:
            raise
        for side in (first, second):
            if (await spi(side).get_jobs([job_id]))[0] is not None:
                raise LeaseLostError(job_id) from None  # stored, but not leased to this holder
        raise


async def take_first(
    quick: QueueBackend | None, wait: QueueBackend, options: DequeueOptions, count: int
) -> tuple[list[Job], QueueBackend]:
    """Lease up to ``count`` jobs from ``quick`` without waiting, else from ``wait`` as
    ``options`` say; return them and the side they came from.

    Raises:
        InvalidJobError, BackendError: from the backends.
    """
    if quick is not None:
        now = msgspec.structs.replace(options, timeout=0.0, count=count)
        jobs = await _take(quick, now, count)
        if jobs:
            return jobs, quick
    return await _take(wait, options, count), wait


async def _take(backend: QueueBackend, options: DequeueOptions, count: int) -> list[Job]:
    if count > 1:
        return await backend.dequeue_many(options)
    job = await backend.dequeue(options)
    return [job] if job is not None else []


async def peek_over(sides: Sequence[QueueBackend], offset: int) -> Job | None:
    """The ready job at ``offset`` when ``sides`` are dequeued from in this order.

    Raises:
        InvalidJobError: offset < 0.
        BackendError: a backend failed.
    """
    for i, side in enumerate(sides):
        job = await side.peek(offset)
        if job is not None or i == len(sides) - 1:
            return job
        offset = max(0, offset - (await side.stats()).queue_depth)
    return None


def common_capabilities(a: BackendCapabilities, b: BackendCapabilities) -> BackendCapabilities:
    """What both support."""
    return BackendCapabilities(**{f: getattr(a, f) and getattr(b, f) for f in a.__struct_fields__})


def summed_stats(name: str, queue: str, sides: Sequence[BackendStats]) -> BackendStats:
    """The depths (and dropped dead jobs) of ``sides`` summed, under ``name``."""
    out = BackendStats(backend=name, queue=queue)
    for st in sides:
        out.queue_depth += st.queue_depth
        out.delayed += st.delayed
        out.in_flight += st.in_flight
        out.dead += st.dead
        out.total_dead_dropped += st.total_dead_dropped
    return out


def worse_health(source: HealthStatus, target: HealthStatus) -> HealthStatus:
    """The worse of the two, with both messages."""
    both = (source, target)
    worst = max(both, key=lambda h: _RANK[h.status])
    msgs = [f"{n}: {h.message}" for n, h in zip(("source", "target"), both, strict=True) if h.message]
    return HealthStatus(status=worst.status, message="; ".join(msgs), details={"migrating": "true"})

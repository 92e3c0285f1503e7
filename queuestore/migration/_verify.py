"""Verification: every job that left the source arrived in the target, unchanged.

Per id recorded in the run's :class:`~queuestore.migration._protocol.Ledger`: the target
holds it with the same content digest and the same place (state, due time), or a place
a consumer explains, or it was consumed on the target through the routing proxy.
"""

from __future__ import annotations

import time

import msgspec

from queuestore._job import Job, JobState
from queuestore._models import IterOptions
from queuestore.abc import QueueBackend
from queuestore.errors import UnsupportedOperationError
from queuestore.migration._protocol import Ledger, content_digest, spi

__all__ = ["Verification", "verify"]

_ALL_STATES = (JobState.READY, JobState.DELAYED, JobState.IN_FLIGHT, JobState.DEAD)


def _ms(value: float | None) -> int | None:
    return None if value is None else round(value * 1000)


class Verification(msgspec.Struct, kw_only=True):
    """The result of :func:`verify`."""

    checked: int = 0
    present: int = 0
    acked_on_target: int = 0
    missing: list[str] = msgspec.field(default_factory=list)
    differ: list[str] = msgspec.field(default_factory=list)
    method: str = "get_jobs"

    @property
    def ok(self) -> bool:
        """True when every moved job arrived unchanged (or was consumed on the target)."""
        return not self.missing and not self.differ


async def _lookup(target: QueueBackend, ids: list[str]) -> tuple[dict[str, Job], str]:
    found: dict[str, Job] = {}
    try:
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            for job_id, job in zip(chunk, await spi(target).get_jobs(chunk), strict=True):
                if job is not None:
                    found[job_id] = job
        return found, "get_jobs"
    except UnsupportedOperationError:
        pass
    wanted = set(ids)
    for _ in range(2):  # a job changing state mid-walk can be missed once; look twice
        async for job in target.iter(IterOptions(count=1000, states=_ALL_STATES)):
            if job.id in wanted and job.id not in found:
                found[job.id] = job
        if len(found) == len(wanted):
            break
    return found, "walk"


async def verify(target: QueueBackend, ledger: Ledger, acked: set[str], delivered: set[str]) -> Verification:
    """Check that every job that left the source arrived in the target.

    A job passes when the target holds it with the same content digest and the
    same place (state, due time) -- or a place a consumer explains (it was leased
    from the target through the routing proxy, or it was delayed and came due) --
    or when it was acked on the target through the proxy. Uses ``get_jobs`` where
    the target supports it, else a paged walk of the target.

    Raises:
        BackendError: the target failed.
    """
    ids = [i for i in ledger.moved if i not in acked]
    found, method = await _lookup(target, ids)
    res = Verification(checked=len(ledger), acked_on_target=len(ledger) - len(ids), method=method)
    now_ms = round(time.time() * 1000)
    for job_id in ids:
        job = found.get(job_id)
        if job is None:
            if job_id not in delivered:
                res.missing.append(job_id)
            else:
                res.acked_on_target += 1  # leased on the target and acked there by id elsewhere
            continue
        digest, state, due = ledger.moved[job_id]
        if content_digest(job) != digest:
            res.differ.append(job_id)
            continue
        now_due = _ms(job.available_at)
        # backends keep due times to the millisecond (some truncate): allow 1 ms either way
        same_due = now_due == due or (now_due is not None and due is not None and abs(now_due - due) <= 1)
        same_place = job.state == state and same_due
        came_due = state is JobState.DELAYED and due is not None and due <= now_ms + 1000
        if same_place or job_id in delivered or (came_due and job.state is not JobState.DELAYED):
            res.present += 1
        else:
            res.differ.append(job_id)
    return res

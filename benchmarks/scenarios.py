"""What every backend scenario shares: the scenario names, the run's settings, the results,
opening a backend, and the untimed fill and drain. Written against the ``QueueBackend`` ABC only.

Every scenario runs on a fresh queue (its own backend instance, inside ``async with`` so the
maintenance loop runs as it would in production), with jobs built before the timer starts,
and leaves the queue empty (an untimed drain) so the next scenario starts clean.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmarks.workload import Counter, WorkSplit, run_tasks
from queuestore import BackendConfig, DequeueOptions, Job, default_registry
from queuestore.abc import QueueBackend

__all__ = [
    "SCENARIOS",
    "THROUGHPUT_SCENARIOS",
    "Bench",
    "LinearResult",
    "MemoryResult",
    "backend_family",
    "batched",
    "drain",
    "fill",
    "open_backend",
]

#: the scenarios that measure jobs per second, in run order (see :mod:`benchmarks.throughput`)
THROUGHPUT_SCENARIOS = (
    "enqueue_1",
    "enqueue_32",
    "enqueue_many",
    "dequeue_ack_1",
    "dequeue_ack_32",
    "dequeue_many",
    "end_to_end",
)
#: every scenario, in run order
SCENARIOS = (*THROUGHPUT_SCENARIOS, "memory", "linear", "scale")


@dataclass
class Bench:
    """What a scenario needs to know about the run."""

    url: str | None
    server: Any  # raw redis client for INFO (None without a server)
    jobs: int
    concurrency: int = 32
    batch: int = 100
    pool: int | None = None
    dequeue_timeout: float = 0.0
    #: every key of the run starts with it (per run, so --url cleanup deletes only this run's keys)
    #: failures of the untimed drain after a scenario (reported, never masking the figure)
    cleanup_errors: list[str] = field(default_factory=list)
    #: bytes per job of a raw hash + list of the same payloads, by job count (measured once per run)
    raw_memory: dict[int, float] = field(default_factory=dict)
    key_prefix: str = field(default_factory=lambda: f"qsbench-{uuid.uuid4().hex[:8]}:")


@dataclass
class MemoryResult:
    jobs: int
    bytes_per_queued_job: float
    bytes_per_acked_job: float
    source: str  # "redis INFO used_memory" | "tracemalloc"
    baseline: int = 0
    queued: int = 0
    acked: int = 0
    retained_first_cycle: float = 0.0


@dataclass
class LinearResult:
    sizes: list[int]
    jobs_per_s: list[float]
    runs: list[int] = field(default_factory=list)
    client_cpu_us_per_job: list[float] = field(default_factory=list)
    server_cpu_us_per_job: list[float | None] = field(default_factory=list)

    @property
    def spread(self) -> float:
        """(fastest - slowest) / fastest."""
        hi = max(self.jobs_per_s)
        return (hi - min(self.jobs_per_s)) / hi if hi > 0 else 0.0


def split_variant(btype: str) -> tuple[str, str]:
    """``"redis-lists+coalesce"`` -> ``("redis-lists", "coalesce")``: a type and its run variant."""
    base, _, variant = btype.partition("+")
    return base, variant


def backend_config(bench: Bench, btype: str, queue: str) -> BackendConfig:
    base, variant = split_variant(btype)
    if base == "memory":
        return BackendConfig(type=base, name=f"bench-{base}", queue=queue, options={"namespace": "qsbench"})
    options: dict[str, object] = {"key_prefix": bench.key_prefix}
    if bench.pool is not None:  # by default the headline figures use the library's defaults
        options["max_connections"] = bench.pool
    if variant in ("coalesce", "nocoalesce"):
        options["coalesce"] = variant == "coalesce"  # group commit of concurrent per-job calls
    elif variant:
        raise ValueError(f"unknown backend variant {variant!r} in {btype!r} (known: coalesce, nocoalesce)")
    return BackendConfig(type=base, name=f"bench-{base}", url=bench.url or "", queue=queue, options=options)


@asynccontextmanager
async def open_backend(bench: Bench, btype: str, scenario: str) -> AsyncIterator[QueueBackend]:
    """A backend of ``btype`` on a fresh queue, inside ``async with`` (maintenance running)."""
    queue = f"bench-{scenario}-{uuid.uuid4().hex[:8]}"
    factory = default_registry().factory(split_variant(btype)[0])
    backend = await factory.create(backend_config(bench, btype, queue))
    async with backend:
        yield backend
        try:  # not in a finally: a failed scenario's error must not be masked by the cleanup
            await drain(backend, bench.batch)
        except Exception as exc:
            bench.cleanup_errors.append(f"{btype} {scenario}: drain after the run failed: {exc}")


def backend_family(btype: str, backend: QueueBackend) -> str:
    """``memory``, ``streams`` or ``lists``: which raw ceiling the backend is compared with."""
    if btype == "memory":
        return "memory"
    names = " ".join(c.__name__.lower() for c in type(backend).__mro__)
    if "stream" in names or "stream" in btype:
        return "streams"
    return "lists"


def batched(backend: QueueBackend) -> bool:
    return bool(backend.capabilities().batch_operations)


async def drain(backend: QueueBackend, batch: int) -> int:
    """Dequeue and ack everything ready (untimed cleanup). Returns how many."""
    n = 0
    if backend.closed:
        return 0
    if batched(backend):
        while got := await backend.dequeue_many(DequeueOptions(count=max(batch, 500), timeout=0)):
            await backend.ack_many(got)
            n += len(got)
    else:
        while (job := await backend.dequeue(DequeueOptions(timeout=0))) is not None:
            await backend.ack(job)
            n += 1
    return n


async def fill(backend: QueueBackend, jobs: list[Job], concurrency: int, ctr: Counter | None = None) -> None:
    """Enqueue ``jobs`` the fastest way the backend offers (enqueue_many, else 32 tasks)."""
    if batched(backend):
        for i in range(0, len(jobs), 500):
            await backend.enqueue_many(jobs[i : i + 500])
            if ctr is not None:
                ctr.done += len(jobs[i : i + 500])
        return
    split = WorkSplit(len(jobs))

    async def worker(_: int) -> None:
        while split.take():
            await backend.enqueue(jobs[split.left])
            if ctr is not None:
                ctr.done += 1

    await run_tasks(concurrency, worker)

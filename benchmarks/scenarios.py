"""The backend scenarios, written against the ``QueueBackend`` ABC only.

Every scenario runs on a fresh queue (its own backend instance, inside ``async with`` so the
maintenance loop runs as it would in production), with jobs built before the timer starts,
and leaves the queue empty (an untimed drain) so the next scenario starts clean.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmarks.workload import Counter, Measure, Meter, WorkSplit, make_jobs, run_tasks
from queuestore import BackendConfig, DequeueOptions, Job, default_registry
from queuestore.abc import QueueBackend

__all__ = [
    "SCENARIOS",
    "THROUGHPUT_SCENARIOS",
    "Bench",
    "LinearResult",
    "MemoryResult",
    "backend_family",
    "open_backend",
    "run_throughput",
]

#: the scenarios that measure jobs per second, in run order (see :func:`run_throughput`)
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
SCENARIOS = (*THROUGHPUT_SCENARIOS, "memory", "linear")


@dataclass
class Bench:
    """What a scenario needs to know about the run."""

    url: str | None
    server: Any  # raw redis client for INFO (None without a server)
    jobs: int
    concurrency: int = 32
    batch: int = 100
    pool: int = 32
    dequeue_timeout: float = 0.0
    #: every key of the run starts with it (per run, so --url cleanup deletes only this run's keys)
    #: failures of the untimed drain after a scenario (reported, never masking the figure)
    cleanup_errors: list[str] = field(default_factory=list)
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
    options: dict[str, object] = {"max_connections": bench.pool, "key_prefix": bench.key_prefix}
    if variant == "coalesce":
        options["coalesce"] = True  # concurrent per-job calls share one script call per loop tick
    elif variant:
        raise ValueError(f"unknown backend variant {variant!r} in {btype!r} (known: coalesce)")
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


def _batched(backend: QueueBackend) -> bool:
    return bool(backend.capabilities().batch_operations)


async def drain(backend: QueueBackend, batch: int) -> int:
    """Dequeue and ack everything ready (untimed cleanup). Returns how many."""
    n = 0
    if backend.closed:
        return 0
    if _batched(backend):
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
    if _batched(backend):
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


# -- enqueue ------------------------------------------------------------------------------------


async def enqueue_tasks(bench: Bench, backend: QueueBackend, n: int, tasks: int, ctr: Counter) -> Measure:
    jobs = make_jobs(backend.queue, n)
    split = WorkSplit(n)
    lat: list[float] = []
    pc = time.perf_counter

    async def worker(_: int) -> None:
        while split.take():
            job = jobs[split.left]
            t = pc()
            await backend.enqueue(job)
            lat.append(pc() - t)
            ctr.done += 1

    async with Meter(bench.server) as m:
        await run_tasks(tasks, worker)
    return m.result(n, enqueue=lat)


async def enqueue_many(bench: Bench, backend: QueueBackend, n: int, ctr: Counter) -> Measure:
    jobs = make_jobs(backend.queue, n)
    b = bench.batch
    async with Meter(bench.server) as m:
        for i in range(0, n, b):
            chunk = jobs[i : i + b]
            await backend.enqueue_many(chunk)
            ctr.done += len(chunk)
    return m.result(n)


# -- dequeue + ack ------------------------------------------------------------------------------


async def dequeue_ack(
    bench: Bench, backend: QueueBackend, n: int, tasks: int, ctr: Counter, *, prefill: bool = True
) -> Measure:
    if prefill:
        await fill(backend, make_jobs(backend.queue, n), bench.concurrency)
    opts = DequeueOptions(timeout=bench.dequeue_timeout)
    split = WorkSplit(n)
    lat_d: list[float] = []
    lat_a: list[float] = []
    lat_da: list[float] = []
    misses = 0
    pc = time.perf_counter

    async def worker(_: int) -> None:
        nonlocal misses
        while split.take():
            t0 = pc()
            job = await backend.dequeue(opts)
            t1 = pc()
            if job is None:
                misses += 1
                split.give_back(1)
                if misses > n:
                    raise RuntimeError(f"dequeue returned None {misses} times on a prefilled queue")
                continue
            await backend.ack(job)
            t2 = pc()
            lat_d.append(t1 - t0)
            lat_a.append(t2 - t1)
            lat_da.append(t2 - t0)
            ctr.done += 1

    async with Meter(bench.server) as m:
        await run_tasks(tasks, worker)
    res = m.result(n, dequeue=lat_d, ack=lat_a, dequeue_ack=lat_da)
    if misses:
        res.notes.append(f"{misses} empty dequeues on a prefilled queue")
    return res


async def _dequeue_ack_batches(
    backend: QueueBackend, opts: DequeueOptions, n: int, ctr: Counter, *, counted: int = 0
) -> tuple[int, int]:
    """``dequeue_many`` + ``ack_many`` until ``n`` jobs are done; ``ctr`` counts from ``counted``.

    Returns:
        How many jobs were dequeued, and how many of their acks were refused.

    Raises:
        RuntimeError: the queue came back empty 100 times with jobs left.
    """
    done = refused = empty = 0
    while done < n:
        got = await backend.dequeue_many(opts)
        if not got:
            empty += 1
            if empty > 100:
                raise RuntimeError(f"dequeue_many came back empty with {n - done} jobs left")
            continue
        ok = await backend.ack_many(got)
        refused += len(ok) - sum(ok)
        done += len(got)
        ctr.done = counted + done
    return done, refused


async def dequeue_many(
    bench: Bench, backend: QueueBackend, n: int, ctr: Counter, *, prefill: bool = True
) -> Measure:
    if prefill:
        await fill(backend, make_jobs(backend.queue, n), bench.concurrency)
    opts = DequeueOptions(count=bench.batch, timeout=bench.dequeue_timeout)
    async with Meter(bench.server) as m:
        done, refused = await _dequeue_ack_batches(backend, opts, n, ctr)
    res = m.result(done)
    if refused:
        res.notes.append(f"ack_many refused {refused} jobs")
    return res


# -- end to end -----------------------------------------------------------------------------------


async def end_to_end(bench: Bench, backend: QueueBackend, n: int, ctr: Counter) -> Measure:
    """Enqueue n jobs, then drain them with ack: batches of ``bench.batch`` where the backend has
    batch operations, else ``bench.concurrency`` tasks of per-job calls."""
    jobs = make_jobs(backend.queue, n)
    b = bench.batch
    if not _batched(backend):
        async with Meter(bench.server) as m:
            await fill(backend, jobs, bench.concurrency, ctr)
            split = WorkSplit(n)

            async def worker(_: int) -> None:
                while split.take():
                    job = await backend.dequeue(DequeueOptions(timeout=bench.dequeue_timeout))
                    if job is None:
                        split.give_back(1)
                        continue
                    await backend.ack(job)
                    ctr.done += 1

            await run_tasks(bench.concurrency, worker)
        return m.result(n)
    opts = DequeueOptions(count=b, timeout=bench.dequeue_timeout)
    async with Meter(bench.server) as m:
        for i in range(0, n, b):
            chunk = jobs[i : i + b]
            await backend.enqueue_many(chunk)
            ctr.done += len(chunk)
        done, _ = await _dequeue_ack_batches(backend, opts, n, ctr, counted=n)
    return m.result(done)


async def run_throughput(
    bench: Bench, backend: QueueBackend, scenario: str, n: int, ctr: Counter, *, prefill: bool = True
) -> Measure:
    """Run one of :data:`THROUGHPUT_SCENARIOS` on ``backend`` with ``n`` jobs.

    ``prefill=False`` leaves filling the queue of the dequeue scenarios to the caller.
    """
    c = bench.concurrency
    if scenario == "enqueue_1":
        return await enqueue_tasks(bench, backend, n, 1, ctr)
    if scenario == "enqueue_32":
        return await enqueue_tasks(bench, backend, n, c, ctr)
    if scenario == "enqueue_many":
        return await enqueue_many(bench, backend, n, ctr)
    if scenario == "dequeue_ack_1":
        return await dequeue_ack(bench, backend, n, 1, ctr, prefill=prefill)
    if scenario == "dequeue_ack_32":
        return await dequeue_ack(bench, backend, n, c, ctr, prefill=prefill)
    if scenario == "dequeue_many":
        return await dequeue_many(bench, backend, n, ctr, prefill=prefill)
    if scenario == "end_to_end":
        return await end_to_end(bench, backend, n, ctr)
    raise ValueError(f"{scenario!r} is not a throughput scenario")


# -- server memory ----------------------------------------------------------------------------------


def _data_bytes(info: dict[str, Any]) -> int:
    """used_memory less the client buffers (query and output buffers of the connections, which
    the server grows and shrinks on its own schedule: megabytes of noise with 32 connections)."""
    return (
        int(info["used_memory"])
        - int(info.get("mem_clients_normal", 0))
        - int(info.get("mem_clients_slaves", 0))
    )


async def used_memory(server: Any, settle: float = 2.0) -> int:
    """INFO memory used_memory less client buffers, read until two readings 100 ms apart agree."""
    import asyncio

    last = _data_bytes(await server.info("memory"))
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        cur = _data_bytes(await server.info("memory"))
        if cur == last:
            return cur
        last = cur
    return last


async def memory(
    bench: Bench, backend: QueueBackend, n: int, ctr: Counter, *, in_process: bool = False
) -> MemoryResult:
    """Bytes per queued job and per acked job, from the server's INFO used_memory -- or, for the
    in-process memory backend, from tracemalloc.

    Two fill/drain cycles of ``n`` jobs on the same queue: the second cycle is the measurement
    (queued = after its fill, acked = after its drain, both against the end of the first cycle),
    so structures that keep their high-water size (a Python dict's table) are in the baseline and
    only what accumulates per acked job is counted. What the first cycle kept over a fresh
    queue is reported beside it (``retained_first_cycle``).
    """
    if in_process or bench.server is None:
        tracemalloc.start()

        async def reading() -> int:
            gc.collect()
            return tracemalloc.get_traced_memory()[0]

        source = "tracemalloc (Python heap)"
    else:

        async def reading() -> int:
            return await used_memory(bench.server)

        source = "redis INFO used_memory - client buffers"
    try:
        ctr.total = 2 * n
        fresh = await reading()
        await fill(backend, make_jobs(backend.queue, n), bench.concurrency, ctr)
        await drain(backend, bench.batch)
        kept = await reading()
        jobs = make_jobs(backend.queue, n)
        # the new Job objects are the caller's, not the store's: read again after making them
        base = await reading() if in_process else kept
        await fill(backend, jobs, bench.concurrency, ctr)
        queued = await reading()
        await drain(backend, bench.batch)
        acked = await reading()
    finally:
        if tracemalloc.is_tracing():
            tracemalloc.stop()
    res = MemoryResult(n, (queued - base) / n, (acked - base) / n, source, base, queued, acked)
    res.retained_first_cycle = (kept - fresh) / n
    return res


# -- linear cost ------------------------------------------------------------------------------------


async def linear(bench: Bench, btype: str, sizes: list[int], ctr: Counter) -> LinearResult:
    """End to end at each size on a fresh queue; a size at most a tenth of the largest is run
    3 times and its median taken (short runs are noisy)."""
    rates: list[float] = []
    runs: list[int] = []
    cpu: list[float] = []
    server_cpu: list[float | None] = []
    top = max(sizes)
    for size in sizes:
        reps = 3 if size * 10 <= top else 1
        got: list[Measure] = []
        for _ in range(reps):
            async with open_backend(bench, btype, "linear") as backend:
                sub = Counter(size)
                got.append(await end_to_end(bench, backend, size, sub))
                ctr.done += size
        mid = sorted(got, key=lambda m: m.jobs_per_s)[len(got) // 2]  # the median run
        rates.append(mid.jobs_per_s)
        cpu.append(mid.client_cpu_us_per_job())
        server_cpu.append(mid.server_cpu_us_per_job())
        runs.append(reps)
    return LinearResult(sizes, rates, runs, cpu, server_cpu)

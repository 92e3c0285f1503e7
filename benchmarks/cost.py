"""The cost scenarios: server (or process) memory per queued and per acked job, and the
linear-cost check (end to end at growing N)."""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

from benchmarks.scenarios import Bench, LinearResult, MemoryResult, drain, fill, open_backend
from benchmarks.throughput import end_to_end
from benchmarks.workload import Counter, Measure, make_jobs
from queuestore.abc import QueueBackend

__all__ = ["linear", "memory", "used_memory"]


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

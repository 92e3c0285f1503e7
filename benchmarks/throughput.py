"""The throughput scenarios: per-job and batch enqueue, dequeue + ack, and end to end."""

from __future__ import annotations

import time

from benchmarks.scenarios import Bench, batched, fill
from benchmarks.workload import Counter, Measure, Meter, WorkSplit, make_jobs, run_tasks
from queuestore import DequeueOptions
from queuestore.abc import QueueBackend

__all__ = ["dequeue_ack", "dequeue_many", "end_to_end", "enqueue_many", "enqueue_tasks", "run_throughput"]


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
    if not batched(backend):
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
    """Run one of :data:`benchmarks.scenarios.THROUGHPUT_SCENARIOS` on ``backend`` with ``n`` jobs.

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

"""``python -m queuestore demo``: a short, real run of the queue contract.

Where it runs, in order of preference:

1. ``QUEUESTORE_URL`` is set: that server, with the ``redis-lists`` backend;
2. ``redis-server`` is on PATH: a throwaway local server (:class:`queuestore.testing.RedisServer`:
   temp dir, free loopback port, stopped afterwards), with the ``redis-lists`` backend;
3. otherwise: the in-process ``memory`` backend (the embedded default).

It always prints which backend it uses and why. Then it enqueues jobs with priorities, runs a
few concurrent anyio workers that dequeue with a lease and ack, sends one poison job through
its retries (nack) into the dead-letter state, and prints the backend's stats.

On a server it did not start it leaves nothing behind: at the end (or on failure) it purges
its dead job and deletes every key of its own ``demo-<random>`` queue, which the backend's key
layout names (one hash tag, so one command even on a cluster).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

import queuestore as qs
from queuestore._redact import redact
from queuestore.testing import RedisServer, ServerError

__all__ = ["DemoError", "run_demo"]

URL_ENV = "QUEUESTORE_URL"
REDIS_TYPE = "redis-lists"
POISON_MAX_RETRIES = 2
Printer = Callable[[str], None]


class DemoError(Exception):
    """The demo could not run or its results were wrong (the message says which)."""


@dataclass
class Plan:
    """Where the demo runs: the backend type, the URL (if any) and why."""

    backend_type: str
    url: str = ""
    reason: str = ""
    start_local_server: str | None = None  # path of a redis-server to start


def choose_backend(environ: dict[str, str] | None = None) -> Plan:
    """Decide where to run (see the module docstring)."""
    env = os.environ if environ is None else environ
    url = env.get(URL_ENV, "").strip()
    if url:
        return Plan(REDIS_TYPE, url, f"{URL_ENV} is set")
    server = shutil.which("redis-server")
    if server:
        return Plan(
            REDIS_TYPE,
            reason=f"{URL_ENV} is not set and {server} is on PATH: starting a throwaway local server",
            start_local_server=server,
        )
    return Plan(
        "memory",
        reason=f"{URL_ENV} is not set and no redis-server on PATH: using the in-process memory backend",
    )


# -- the run ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the workers did, checked at the end."""

    acked: list[str] = field(default_factory=list)
    poison_attempts: int = 0
    poison_dead: bool = False
    nacks: int = 0


async def _worker(
    name: str,
    backend: qs.QueueBackend,
    poison_id: str,
    total: int,
    tally: Tally,
    done: anyio.Event,
    out: Printer,
    verbose: bool,
) -> None:
    options = qs.DequeueOptions(timeout=0.2, consumer_id=name, visibility_timeout=30.0)
    while not done.is_set():
        job = await backend.dequeue(options)
        if job is None:
            continue
        if job.id == poison_id:
            tally.poison_attempts += 1
            error = f"cannot parse payload (attempt {job.attempt})"
            goes_dead = job.retry_count + 1 > job.max_retries
            await backend.nack(job, requeue=True, delay=0.05, error=error)
            tally.nacks += 1
            fate = "dead-lettered" if goes_dead else f"retry {job.retry_count + 1}/{job.max_retries}"
            out(f"  {name}: poison job failed, attempt {job.attempt}: nack -> {fate}")
            if goes_dead:
                tally.poison_dead = True
        else:
            await anyio.sleep(0.01)  # "work"
            await backend.ack(job)  # the Job carries its lease token: a stale holder would be refused
            tally.acked.append(job.id)
            if verbose:
                out(f"  {name}: job #{job.payload['n']:<3} priority {job.priority}  acked")
        if len(tally.acked) >= total and tally.poison_dead:
            done.set()


async def run_demo(jobs: int = 12, workers: int = 3, *, out: Printer = print) -> qs.BackendStats:
    """Run the demo end to end; return the final stats.

    Raises:
        DemoError: it could not run, or the outcome was not what the contract promises.
        QueueStoreError: a backend error.
    """
    if jobs < 1 or workers < 1:
        raise DemoError("--jobs and --workers must be at least 1")
    plan = choose_backend()
    out(f"backend: {plan.backend_type} ({plan.reason})")
    if plan.start_local_server:
        return await _run_on_local_server(plan, jobs, workers, out)
    stats = await _run_on(plan.backend_type, plan.url, jobs, workers, out)
    if plan.url:
        out(f"removed queue {stats.queue!r} and its keys from {redact(plan.url)}")
    return stats


async def _run_on_local_server(plan: Plan, jobs: int, workers: int, out: Printer) -> qs.BackendStats:
    try:
        server = RedisServer(binary=plan.start_local_server)
        await anyio.to_thread.run_sync(server.start)
    except ServerError as exc:
        raise DemoError(f"the local redis-server did not start: {exc}") from exc
    out(f"started a throwaway redis-server on {server.address} (pid {server.pid})")
    pid = server.pid
    try:
        return await _run_on(plan.backend_type, server.url, jobs, workers, out)
    finally:
        await anyio.to_thread.run_sync(server.cleanup)
        out(f"stopped the throwaway redis-server (pid {pid})")


async def _run_on(backend_type: str, url: str, jobs: int, workers: int, out: Printer) -> qs.BackendStats:
    queue = f"demo-{uuid.uuid4().hex[:8]}"
    factory: qs.BackendFactory[Any] = qs.default_registry().factory(backend_type)
    config = qs.BackendConfig(type=backend_type, name="demo", url=url, queue=queue)
    async with await factory.create(config) as backend:
        try:
            return await _demo_run(backend, queue, jobs, workers, out)
        finally:
            with anyio.CancelScope(shield=True):
                await _clean_up(backend)


async def _clean_up(backend: qs.QueueBackend) -> None:
    """Remove what the demo stored: its dead job (purge), then every key of its queue.

    Raises:
        QueueStoreError: the store failed.
    """
    with contextlib.suppress(qs.UnsupportedOperationError):
        await backend.purge(qs.JobState.DEAD, qs.ALL)
    from queuestore.backends._redis.base import RedisBackendBase

    keys = _queue_keys(backend)
    if keys and isinstance(backend, RedisBackendBase):
        await backend.conn.client.delete(*keys)


def _queue_keys(backend: qs.QueueBackend) -> list[str]:
    """Every key the backend keeps for its queue, as its key layout names them (none in process)."""
    from queuestore.backends.redis_lists import RedisListsBackend
    from queuestore.backends.redis_streams import RedisStreamsBackend

    if isinstance(backend, RedisListsBackend):
        return list(backend.block)
    if isinstance(backend, RedisStreamsBackend):
        return [*backend.skeys.core(), backend.skeys.idem]
    return []


async def _demo_run(
    backend: qs.QueueBackend, queue: str, jobs: int, workers: int, out: Printer
) -> qs.BackendStats:
    caps = backend.capabilities()
    flags = [name for name in qs.BackendCapabilities.__struct_fields__ if getattr(caps, name)]
    out(f"queue {queue!r} on {backend!r}")
    out(f"capabilities: {', '.join(flags) or 'none'}")

    batch = [
        qs.Job(type="email", payload={"n": i, "to": f"user{i}@example.com"}, priority=(i * 7) % 10)
        for i in range(1, jobs + 1)
    ]
    poison = qs.Job(type="email", payload={"n": 0}, priority=9, max_retries=POISON_MAX_RETRIES)
    if caps.batch_operations:
        stored = await backend.enqueue_many([*batch, poison])
    else:
        stored = [await backend.enqueue(job) for job in [*batch, poison]]
    if not all(stored):
        raise DemoError(f"only {sum(stored)} of {len(stored)} jobs were stored")
    again = await backend.enqueue(batch[0])
    out(
        f"enqueued {len(batch)} jobs (priorities 0..9) + 1 poison job "
        f"(max_retries={POISON_MAX_RETRIES}); enqueueing job #1 again (same id) is a no-op: {not again}"
    )
    nxt = await backend.peek(0)
    out(f"length {await backend.length()}; next to dequeue: priority {nxt.priority if nxt else '-'}")

    tally = Tally()
    done = anyio.Event()
    verbose = jobs <= 30
    out(f"processing with {workers} concurrent workers:")
    started = time.perf_counter()
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for w in range(1, workers + 1):
                tg.start_soon(_worker, f"worker-{w}", backend, poison.id, jobs, tally, done, out, verbose)
    elapsed = time.perf_counter() - started
    tries = tally.poison_attempts
    out(f"processed {len(tally.acked)} jobs in {elapsed:.2f}s; the poison job was tried {tries}x")

    dead = [j async for j in backend.iter(qs.IterOptions(states=(qs.JobState.DEAD,), count=10))]
    for job in dead:
        out(f"dead-letter: job {job.id[:8]}... retry_count={job.retry_count} reason={job.dead_reason!r}")

    stats = await backend.stats()
    health = await backend.health()
    _print_stats(stats, health, out)
    _check(stats, tally, dead, poison.id, jobs)
    return stats


def _print_stats(stats: qs.BackendStats, health: qs.HealthStatus, out: Printer) -> None:
    out("stats:")
    depth = f"ready {stats.queue_depth}, delayed {stats.delayed}, in flight {stats.in_flight}"
    out(f"  {depth}, dead {stats.dead}")
    out(
        f"  totals: enqueued {stats.total_enqueued}, dequeued {stats.total_dequeued}, "
        f"acked {stats.total_acked}, nacked {stats.total_nacked}, dead-lettered {stats.total_dead_lettered}"
    )
    out(
        f"  rates (per second, window {stats.window_seconds:.0f}s): enqueue {stats.enqueue_rate:.1f}/s, "
        f"dequeue {stats.dequeue_rate:.1f}/s, ack {stats.ack_rate:.1f}/s; error ratio {stats.error_rate:.2f}"
    )
    out(f"  latency avg {stats.avg_latency_ms:.3f} ms, p99 {stats.p99_latency_ms:.3f} ms")
    out(f"health: {health.status.value}{f' ({health.message})' if health.message else ''}")


def _check(stats: qs.BackendStats, tally: Tally, dead: list[qs.Job], poison_id: str, jobs: int) -> None:
    problems = []
    if sorted(set(tally.acked)) != sorted(tally.acked) or len(tally.acked) != jobs:
        problems.append(f"acked {len(tally.acked)} jobs ({len(set(tally.acked))} distinct), expected {jobs}")
    if tally.poison_attempts != POISON_MAX_RETRIES + 1:
        problems.append(f"poison job tried {tally.poison_attempts}x, expected {POISON_MAX_RETRIES + 1}")
    if [job.id for job in dead] != [poison_id]:
        problems.append(f"dead-letter holds {[job.id for job in dead]}, expected only the poison job")
    if (stats.queue_depth, stats.delayed, stats.in_flight, stats.dead) != (0, 0, 0, 1):
        problems.append(
            f"final state ready={stats.queue_depth} delayed={stats.delayed} "
            f"in_flight={stats.in_flight} dead={stats.dead}, expected 0/0/0/1"
        )
    if problems:
        raise DemoError("the run did not end as the contract says: " + "; ".join(problems))


def _leaf(exc: BaseException) -> BaseException:
    """The single error inside (nested) exception groups, or ``exc`` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def main(jobs: int, workers: int) -> int:
    """Run the demo; print a clear message and return non-zero on failure."""
    try:
        anyio.run(run_demo, jobs, workers)
    except Exception as group:
        exc = _leaf(group)
        if isinstance(exc, qs.QueueStoreError):
            print(f"demo failed [{qs.error_code(exc)}]: {exc}", file=sys.stderr)
        elif isinstance(exc, DemoError):
            print(f"demo failed: {exc}", file=sys.stderr)
        elif isinstance(exc, TimeoutError):
            print("demo failed: the workers did not finish within 60 s", file=sys.stderr)
        else:
            raise
        return 1
    print("demo finished: every job acked once, the poison job dead-lettered.")
    return 0

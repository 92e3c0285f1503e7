"""``demo`` and ``bench``: a short real run, and a quick throughput measurement.

``bench`` works on a fresh queue named ``bench-<random>`` on the chosen backend, so it
never touches a real queue's jobs; it acks everything it enqueued.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec

from queuestore import _demo
from queuestore._job import Job
from queuestore._models import BackendConfig, DequeueOptions
from queuestore._registry import default_registry
from queuestore.abc import QueueBackend
from queuestore.cli._output import Out
from queuestore.cli._target import Target
from queuestore.errors import ConfigurationError, QueueStoreError

__all__ = ["bench", "bench_config", "demo"]


async def demo(target: Target, out: Out, jobs: int, workers: int) -> int:
    """Run the demo on ``--url``/``--type`` when given, else where ``python -m queuestore demo`` would.

    Returns 0 when every promise of the contract held, else 1 (the reason printed).
    """

    def say(text: str) -> None:
        out.line(text) if not out.json else out.note(text)

    try:
        if target.url or target.type:
            stats = await _demo._run_on(target.type or "redis-lists", target.url or "", jobs, workers, say)
        else:
            stats = await _demo.run_demo(jobs, workers, out=say)
    except _demo.DemoError as exc:
        out.error(f"demo failed: {exc}")
        return 1
    if out.json:
        out.data(stats)
    else:
        out.line("demo finished: every job acked once, the poison job dead-lettered.")
    return 0


def bench_config(target: Target, backend: str | None) -> BackendConfig:
    """The backend ``bench`` uses, serving a fresh ``bench-<random>`` queue.

    Which backend: ``backend`` (a name from the config), else the backend of ``--queue``, else
    the default backend, else the only one.

    Raises:
        UsageError: no config to read.
        ConfigurationError: the config is invalid, or ``backend`` is not in it.
    """
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    url_mode = target.config_path() is None
    config = target.storage_config(queue if url_mode else None)
    name = backend
    if name is None and target.queue and not url_mode:
        name = config.get_queue_config(target.queue).backend or None
    name = name or config.default_backend()
    if name is None:
        if len(config.backends) != 1:
            raise ConfigurationError(
                "defaults.backend", "no default backend: choose one with --backend NAME or --queue QUEUE"
            )
        name = next(iter(config.backends))
    return msgspec.structs.replace(config.get_backend_config(name), queue=queue)


async def _timed(label: str, jobs: int, call: Any) -> dict[str, Any]:
    start = time.perf_counter()
    await call()
    elapsed = max(1e-9, time.perf_counter() - start)
    return {
        "phase": label,
        "jobs": jobs,
        "seconds": round(elapsed, 4),
        "jobs_per_s": round(jobs / elapsed, 1),
    }


async def _drain(backend: QueueBackend, jobs: int, batch: int) -> None:
    done = 0
    batched = backend.capabilities().batch_operations and batch > 1
    while done < jobs:
        if batched:
            got = await backend.dequeue_many(DequeueOptions(count=min(batch, jobs - done), timeout=1.0))
            if got:
                await backend.ack_many(got)
        else:
            one = await backend.dequeue(DequeueOptions(timeout=1.0))
            got = [] if one is None else [one]
            if one is not None:
                await backend.ack(one)
        if not got:
            raise QueueStoreError(f"bench: only {done} of {jobs} jobs came back")
        done += len(got)


async def bench(target: Target, out: Out, *, backend: str | None, jobs: int, batch: int, size: int) -> int:
    """Enqueue ``jobs`` jobs of ``size`` payload bytes, then dequeue and ack them; report jobs/s.

    Raises:
        ConfigurationError: the config is invalid or names no such backend.
        BackendError: the store failed.
        QueueStoreError: not every job came back.
    """
    cfg = bench_config(target, backend)
    payload = "x" * size
    batch_jobs = [Job(type="bench", payload=payload) for _ in range(jobs)]
    async with await default_registry().create(cfg.type, cfg) as qb:
        batched = qb.capabilities().batch_operations and batch > 1

        async def fill() -> None:
            if batched:
                for i in range(0, jobs, batch):
                    await qb.enqueue_many(batch_jobs[i : i + batch])
            else:
                for job in batch_jobs:
                    await qb.enqueue(job)

        async def drain() -> None:
            await _drain(qb, jobs, batch)

        rows = [await _timed("enqueue", jobs, fill), await _timed("dequeue+ack", jobs, drain)]
        left = await qb.length()
    result = {"backend": cfg.name, "type": cfg.type, "queue": cfg.queue, "batch": batch if batched else 1}
    if out.json:
        out.data({**result, "left": left, "phases": rows})
    else:
        out.line(f"bench on {cfg.name} ({cfg.type}), queue {cfg.queue}, batch {result['batch']}")
        out.table("throughput", ("phase", "jobs", "seconds", "jobs/s"), [tuple(r.values()) for r in rows])
    return 0 if left == 0 else 1

"""Read-only commands: ``config validate``, ``backends``, ``health``, ``stats``, ``peek``, ``jobs``."""

from __future__ import annotations

import time
from typing import Any

import anyio

from queuestore._job import Job, JobState
from queuestore._models import BackendCapabilities, BackendStats, HealthLevel, HealthStatus, IterOptions
from queuestore._registry import default_registry
from queuestore.cli._output import Out
from queuestore.cli._target import Target, UsageError
from queuestore.errors import BackendError, error_code

__all__ = [
    "STATES",
    "backends",
    "health",
    "jobs",
    "peek",
    "stats",
    "validate_config",
]

# the CLI's state names -> the job states they list
STATES = {
    "ready": JobState.READY,
    "delayed": JobState.DELAYED,
    "leased": JobState.IN_FLIGHT,
    "dead": JobState.DEAD,
}
_CAPABILITIES = tuple(BackendCapabilities.__struct_fields__)
_STATS_COLUMNS = (
    "queue",
    "backend",
    "ready",
    "delayed",
    "leased",
    "dead",
    "enq/s",
    "deq/s",
    "ack/s",
    "errors",
)


def validate_config(target: Target, out: Out) -> int:
    """Load, default and validate the config. Returns 0; errors propagate (exit 2).

    Raises:
        ConfigurationError: the first problem, with its field path.
        UsageError: no config to read.
    """
    config = target.storage_config()
    queues = {q: c.backend for q, c in sorted(config.queues.items())}
    backends = {name: b.type for name, b in sorted(config.backends.items())}
    if out.json:
        out.data({"valid": True, "source": target.describe(), "backends": backends, "queues": queues})
    else:
        out.line(f"{target.describe()}: valid ({len(backends)} backends, {len(queues)} queues)")
        out.table(
            "queues", ("queue", "backend", "type"), [(q, b, backends.get(b)) for q, b in queues.items()]
        )
    return 0


async def backends(target: Target, out: Out, *, connect: bool) -> int:
    """List registered backend types; with a config, each configured backend's capabilities.

    Capabilities come from the connected server (probed at connect), so they are shown
    only for configured backends, and only when ``connect`` is true. A backend that cannot
    connect is named on stderr and left out; the exit code is then 1.

    Raises:
        ConfigurationError: the config is invalid.
    """
    registry = default_registry()
    types = [{"type": name, "loadable": registry.is_loadable(name)} for name in registry.list()]
    configured: list[dict[str, Any]] = []
    unreachable = 0
    if connect:
        async with target.open_each() as (manager, failed):
            unreachable = len(failed)
            for queue in manager.list_queues():
                cfg = manager.get_backend_config(queue)
                caps = manager.get_backend(queue).capabilities()
                configured.append(
                    {"queue": queue, "backend": cfg.name, "type": cfg.type, "capabilities": caps}
                )
            for queue, exc in sorted(failed.items()):
                out.note(f"queue {queue}: cannot connect: [{error_code(exc)}] {exc}")
    code = 1 if unreachable else 0
    if out.json:
        out.data({"types": types, "configured": configured})
        return code
    out.table("backend types", ("type", "module loads"), [(t["type"], t["loadable"]) for t in types])
    if configured:
        rows = [
            (c["queue"], c["backend"], c["type"], *(getattr(c["capabilities"], f) for f in _CAPABILITIES))
            for c in configured
        ]
        out.table("capabilities (probed on the server)", ("queue", "backend", "type", *_CAPABILITIES), rows)
    return code


async def health(target: Target, out: Out, queue: str | None) -> int:
    """Check every configured queue's backend (or ``queue``'s). Returns 1 if any is unhealthy.

    A backend that cannot even connect is reported unhealthy (the others are still checked).

    Raises:
        ConfigurationError: the config is invalid.
    """
    async with target.open_each(queue) as (manager, failed):
        report = await manager.health_check()
    for name, exc in failed.items():
        report[name] = HealthStatus(status=HealthLevel.UNHEALTHY, message=f"[{error_code(exc)}] {exc}")
    unhealthy = sorted(q for q, h in report.items() if h.status == HealthLevel.UNHEALTHY)
    if out.json:
        out.data({"healthy": not unhealthy, "queues": report})
    else:
        rows = [(q, h.status.value, h.latency_ms, h.server, h.message) for q, h in sorted(report.items())]
        out.table("health", ("queue", "status", "latency ms", "server", "message"), rows)
        if unhealthy:
            out.note(f"unhealthy: {', '.join(unhealthy)}")
    return 1 if unhealthy else 0


def _stats_row(queue: str, s: BackendStats | BackendError) -> tuple[Any, ...]:
    if isinstance(s, BaseException):
        return (queue, "-", "-", "-", "-", "-", "-", "-", "-", f"{error_code(s)}: {s}")
    rates = (round(s.enqueue_rate, 2), round(s.dequeue_rate, 2), round(s.ack_rate, 2))
    return (queue, s.backend, s.queue_depth, s.delayed, s.in_flight, s.dead, *rates, s.total_errors)


def _stats_doc(report: dict[str, BackendStats | BackendError]) -> dict[str, Any]:
    return {
        q: ({"error": str(s), "code": error_code(s)} if isinstance(s, BaseException) else s)
        for q, s in sorted(report.items())
    }


async def stats(target: Target, out: Out, queue: str | None, *, interval: float, rounds: int | None) -> int:
    """Print stats of every configured queue (or ``queue``), ``rounds`` times (None: until interrupted),
    ``interval`` seconds apart.

    Returns 1 when a backend's stats failed or it could not connect (in the last round).

    Raises:
        ConfigurationError: the config is invalid.
    """
    async with target.open_each(queue) as (manager, failed):
        done = 0
        while True:
            report = await manager.stats()
            report.update(failed)
            broken = any(isinstance(s, BaseException) for s in report.values())
            if out.json:
                out.data({"timestamp": time.time(), "queues": _stats_doc(report)})
            else:
                rows = [_stats_row(q, s) for q, s in sorted(report.items())]
                out.table(f"stats at {time.strftime('%H:%M:%S')}", _STATS_COLUMNS, rows)
            done += 1
            if rounds is not None and done >= rounds:
                return 1 if broken else 0
            await anyio.sleep(interval)


def _job_row(job: Job) -> tuple[Any, ...]:
    payload = repr(job.payload)
    return (job.id, job.state.value, job.priority, job.attempt, job.type, payload[:60], job.last_error)


_JOB_COLUMNS = ("id", "state", "priority", "attempt", "type", "payload", "last error")


async def prometheus_text(target: Target, out: Out, queue: str | None) -> int:
    """Print one Prometheus text exposition of every configured queue (or ``queue``).

    Raises:
        UsageError: the ``prometheus`` extra is not installed.
        ConfigurationError: the config is invalid.
    """
    try:
        from prometheus_client import CollectorRegistry, generate_latest

        from queuestore.prometheus import QueueStoreCollector
    except ImportError as missing:
        raise UsageError(
            "--prometheus needs the 'prometheus' extra: pip install 'queuestore[prometheus]'"
        ) from missing
    async with target.open_each(queue) as (manager, failed):
        collector = QueueStoreCollector(manager)
        await collector.refresh()
        registry = CollectorRegistry()
        registry.register(collector)
        text = generate_latest(registry).decode()
    out.console.file.write(text)
    for name, exc in sorted(failed.items()):
        out.note(f"queue {name}: [{error_code(exc)}] {exc}")
    return 1 if failed else 0


async def peek(target: Target, out: Out, queue: str, count: int) -> int:
    """Show the next ``count`` jobs to be dequeued from ``queue`` (nothing is leased).

    Raises:
        ConfigurationError: the config is invalid or ``queue`` is not configured.
        BackendError: the store failed.
    """
    async with target.open(queue) as manager:
        backend = manager.get_backend(queue)
        found: list[Job] = []
        for offset in range(count):
            job = await backend.peek(offset)
            if job is None:
                break
            found.append(job)
    if out.json:
        out.data({"queue": queue, "jobs": found})
    else:
        out.table(f"next {count} of {queue}", _JOB_COLUMNS, [_job_row(j) for j in found])
    return 0


async def jobs(target: Target, out: Out, queue: str, state: str, limit: int) -> int:
    """List up to ``limit`` jobs of ``queue`` in ``state`` (paged reads, never the whole queue).

    Raises:
        ConfigurationError: the config is invalid or ``queue`` is not configured.
        BackendError: the store failed.
        UnsupportedOperationError: the backend cannot list that state.
    """
    found: list[Job] = []
    async with target.open(queue) as manager:
        backend = manager.get_backend(queue)
        options = IterOptions(states=(STATES[state],), count=min(limit, 1000))
        walk = backend.iter(options)
        try:
            async for job in walk:
                found.append(job)
                if len(found) >= limit:
                    break
        finally:
            close = getattr(walk, "aclose", None)  # an async generator: end it now, not at GC
            if close is not None:
                await close()
    if out.json:
        out.data({"queue": queue, "state": state, "jobs": found})
    else:
        out.table(f"{state} jobs of {queue} (at most {limit})", _JOB_COLUMNS, [_job_row(j) for j in found])
    return 0

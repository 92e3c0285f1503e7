"""Concurrent health checks and stats over many backends, one time limit each.

One backend failing or hanging never fails the others: its failure is reported
as an ``unhealthy`` HealthStatus or as its BackendError. Messages are redacted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import anyio

from queuestore._models import BackendStats, HealthLevel, HealthStatus
from queuestore._redact import redact
from queuestore.abc import QueueBackend
from queuestore.errors import BackendError, OperationTimeoutError

__all__ = ["health_all", "stats_all"]

log = logging.getLogger("queuestore.manager")


async def health_all(backends: Iterable[tuple[str, QueueBackend]], limit: float) -> dict[str, HealthStatus]:
    """``health()`` of every ``(queue, backend)`` concurrently, keyed by queue (sorted).

    A backend that raises, or does not answer within ``limit`` seconds, is ``unhealthy``.
    """
    results: dict[str, HealthStatus] = {}

    async def one(queue: str, backend: QueueBackend) -> None:
        try:
            with anyio.fail_after(limit):
                status = await backend.health()
            status.message = redact(status.message)
            status.server = None if status.server is None else redact(status.server)
        except TimeoutError:
            status = HealthStatus(status=HealthLevel.UNHEALTHY, message=f"no answer within {limit:g}s")
        except Exception as exc:
            status = HealthStatus(
                status=HealthLevel.UNHEALTHY, message=redact(f"{type(exc).__name__}: {exc}")
            )
        if status.status != HealthLevel.HEALTHY:
            log.warning("queue %s: backend %s is %s: %s", queue, backend.name, status.status, status.message)
        results[queue] = status

    async with anyio.create_task_group() as tg:
        for queue, backend in backends:
            tg.start_soon(one, queue, backend)
    return {q: results[q] for q in sorted(results)}


async def stats_all(
    backends: Iterable[tuple[str, QueueBackend]], limit: float
) -> dict[str, BackendStats | BackendError]:
    """``stats()`` of every ``(queue, backend)`` concurrently, keyed by queue (sorted).

    A failure is reported as its BackendError (a foreign exception wrapped in
    one; OperationTimeoutError when there is no answer within ``limit`` seconds).
    """
    results: dict[str, BackendStats | BackendError] = {}

    async def one(queue: str, backend: QueueBackend) -> None:
        result: BackendStats | BackendError
        try:
            with anyio.fail_after(limit):
                result = await backend.stats()
        except TimeoutError:
            result = OperationTimeoutError(backend.name, "stats", f"no answer within {limit:g}s")
        except BackendError as exc:
            result = exc
        except Exception as exc:
            result = BackendError(backend.name, "stats", exc)
        if isinstance(result, BackendError):
            log.warning("queue %s: stats failed: %s", queue, result)
        results[queue] = result

    async with anyio.create_task_group() as tg:
        for queue, backend in backends:
            tg.start_soon(one, queue, backend)
    return {q: results[q] for q in sorted(results)}

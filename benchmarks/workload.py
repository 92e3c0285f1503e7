"""What every scenario shares: the jobs, the timer, the per-task work split, percentiles."""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from queuestore import Job

__all__ = [
    "PAYLOAD",
    "Counter",
    "Measure",
    "Meter",
    "WorkSplit",
    "make_jobs",
    "percentile",
    "raw_jobs",
    "run_tasks",
]

#: ~200 bytes of payload (msgpack): what every scenario enqueues
PAYLOAD: dict[str, Any] = {"to": "user-00042@example.com", "template": "welcome", "data": "x" * 160}


def make_jobs(queue: str, n: int) -> list[Job]:
    """``n`` fresh jobs for ``queue`` (built before the timer starts: ~6 µs each)."""
    return [Job(payload=PAYLOAD, queue=queue, type="bench") for _ in range(n)]


def raw_jobs(n: int) -> list[bytes]:
    """``n`` raw entries for the ceiling: a 32-hex id followed by ~200 bytes of payload."""
    body = b"|" + b"x" * 199
    return [uuid.uuid4().hex.encode() + body for _ in range(n)]


class Counter:
    """Jobs done so far in the running scenario (read by the progress display)."""

    __slots__ = ("done", "total")

    def __init__(self, total: int) -> None:
        self.done = 0
        self.total = total


class WorkSplit:
    """Hands out ``n`` units of work to competing tasks: ``take(k)`` -> how many to do (0 = stop)."""

    __slots__ = ("left",)

    def __init__(self, n: int) -> None:
        self.left = n

    def take(self, k: int = 1) -> int:
        got = min(k, self.left)
        self.left -= got
        return got

    def give_back(self, k: int) -> None:
        self.left += k


@dataclass
class Measure:
    """One timed run."""

    jobs: int
    seconds: float
    client_cpu_s: float = 0.0
    server_cpu_s: float | None = None
    latencies: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds if self.seconds > 0 else 0.0

    def client_cpu_us_per_job(self) -> float:
        return self.client_cpu_s * 1e6 / self.jobs if self.jobs else 0.0

    def server_cpu_us_per_job(self) -> float | None:
        if self.server_cpu_s is None or not self.jobs:
            return None
        return self.server_cpu_s * 1e6 / self.jobs


async def server_cpu_seconds(client: Any) -> float | None:
    """used_cpu_user + used_cpu_sys of the server (main thread and all), or None without a server."""
    if client is None:
        return None
    info = await client.info("cpu")
    return float(info.get("used_cpu_user", 0.0)) + float(info.get("used_cpu_sys", 0.0))


class Meter:
    """Times a block: wall clock, this process's CPU, and the server's CPU (when given a client).

    ``async with Meter(server) as m: ...`` then ``m.result(jobs)``.
    """

    def __init__(self, server_client: Any = None) -> None:
        self._server = server_client
        self._t0 = self._c0 = 0.0
        self._s0: float | None = None
        self.seconds = self.cpu = 0.0
        self.server_cpu: float | None = None

    async def __aenter__(self) -> Meter:
        self._s0 = await server_cpu_seconds(self._server)
        self._c0 = time.process_time()
        self._t0 = time.perf_counter()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        self.cpu = time.process_time() - self._c0
        s1 = await server_cpu_seconds(self._server)
        self.server_cpu = None if s1 is None or self._s0 is None else s1 - self._s0

    def result(self, jobs: int, **latencies: list[float]) -> Measure:
        return Measure(jobs, self.seconds, self.cpu, self.server_cpu, dict(latencies))


async def run_tasks(n_tasks: int, worker: Callable[[int], Awaitable[None]]) -> None:
    """Run ``worker(i)`` for i in range(n_tasks) concurrently; the first error cancels the rest."""
    import anyio

    async with anyio.create_task_group() as tg:
        for i in range(n_tasks):
            tg.start_soon(worker, i)


def percentile(samples: list[float], q: float) -> float | None:
    """The q-th percentile (0..100, nearest rank) of ``samples`` (seconds) in milliseconds."""
    if not samples:
        return None
    s = sorted(samples)
    k = max(0, min(len(s) - 1, math.ceil(q / 100.0 * len(s)) - 1))
    return s[k] * 1000.0


def loadavg() -> tuple[float, float, float] | None:
    """The 1/5/15-minute load averages, where the OS has them."""
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover - not on every OS
        return None

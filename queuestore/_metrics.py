"""Sliding-window operation metrics shared by every backend.

Counts are kept in one-second buckets over ``window`` seconds, so rates are
per second over the window (or over the time since start, when shorter).
Latencies are a bounded reservoir of the most recent samples, and also a cumulative
histogram over :data:`LATENCY_BUCKETS` (for Prometheus, see ``queuestore.prometheus``).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from types import TracebackType
from typing import TypedDict

__all__ = ["LATENCY_BUCKETS", "Activity", "LatencyHistogram", "OperationMetrics"]

#: Upper bounds (seconds, inclusive) of the latency histogram; a last +Inf bucket follows.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class Activity(TypedDict):
    """The windowed figures of ``BackendStats``, ready to splat into it."""

    enqueue_rate: float
    dequeue_rate: float
    ack_rate: float
    error_rate: float
    avg_latency_ms: float
    p99_latency_ms: float
    window_seconds: float


class LatencyHistogram(TypedDict):
    """Operation latencies since start: cumulative counts per upper bound (``inf`` last), sum, count."""

    buckets: list[tuple[float, int]]
    sum: float
    count: int


_OPS = ("enqueue", "dequeue", "ack", "nack", "dead", "expired", "error", "op")


class OperationMetrics:
    """Counts and latencies of a backend's operations.

    Args:
        window: seconds over which rates are computed.
        samples: how many recent latency samples to keep.
    """

    def __init__(self, window: float = 60.0, samples: int = 2048) -> None:
        self.window = float(window)
        self._started = time.monotonic()
        self._buckets: deque[tuple[int, dict[str, int]]] = deque()
        self.totals: dict[str, int] = dict.fromkeys(_OPS, 0)
        self._latencies: deque[float] = deque(maxlen=samples)
        self._sec = -1  # the second of the newest bucket, and that bucket
        self._cur: dict[str, int] = {}
        self._hist = [0] * (len(LATENCY_BUCKETS) + 1)  # per bucket (not cumulative); last is +Inf
        self._hist_sum = 0.0

    def _bucket(self, now: float) -> dict[str, int]:
        sec = int(now)
        if sec == self._sec:  # the common case: still the newest bucket
            return self._cur
        if not self._buckets or self._buckets[-1][0] != sec:
            self._buckets.append((sec, dict.fromkeys(_OPS, 0)))
            horizon = sec - int(self.window)
            while self._buckets and self._buckets[0][0] <= horizon:
                self._buckets.popleft()
        self._sec, self._cur = sec, self._buckets[-1][1]
        return self._cur

    def record(self, op: str, n: int = 1) -> None:
        """Count ``n`` events of kind ``op`` (enqueue, dequeue, ack, nack, dead, expired, error)."""
        if n <= 0:
            return
        b = self._bucket(time.monotonic())
        b[op] = b.get(op, 0) + n
        self.totals[op] = self.totals.get(op, 0) + n

    def observe(self, seconds: float) -> None:
        """Record one operation's latency (and count it as an operation)."""
        self._latencies.append(seconds)
        self._hist[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._hist_sum += seconds
        self.record("op")

    def latency_histogram(self) -> LatencyHistogram:
        """Every latency observed since start, as a cumulative histogram over :data:`LATENCY_BUCKETS`."""
        cumulative: list[tuple[float, int]] = []
        running = 0
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self._hist, strict=True):
            running += count
            cumulative.append((bound, running))
        return {"buckets": cumulative, "sum": self._hist_sum, "count": running}

    def timed(self) -> _Timed:
        """Time the block as one operation; count an error if it raises.

        A small slotted context manager rather than a generator-based one: it runs
        around every backend call.
        """
        return _Timed(self)

    def _span(self) -> float:
        return max(1e-9, min(self.window, time.monotonic() - self._started))

    def rate(self, op: str) -> float:
        """Events of ``op`` per second over the window."""
        horizon = int(time.monotonic()) - int(self.window)
        total = sum(b.get(op, 0) for sec, b in self._buckets if sec > horizon)
        return total / self._span()

    def error_ratio(self) -> float:
        """Errors / operations over the window (0.0 when idle)."""
        horizon = int(time.monotonic()) - int(self.window)
        ops = errs = 0
        for sec, b in self._buckets:
            if sec > horizon:
                ops += b.get("op", 0)
                errs += b.get("error", 0)
        return errs / ops if ops else 0.0

    def latency_ms(self) -> tuple[float, float]:
        """(average, p99) latency in milliseconds over the recent samples."""
        if not self._latencies:
            return 0.0, 0.0
        ordered = sorted(self._latencies)
        avg = sum(ordered) / len(ordered)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        return avg * 1000.0, p99 * 1000.0

    def activity(self) -> Activity:
        """The window's rates, error ratio and latencies, named as in ``BackendStats``."""
        avg, p99 = self.latency_ms()
        return {
            "enqueue_rate": self.rate("enqueue"),
            "dequeue_rate": self.rate("dequeue"),
            "ack_rate": self.rate("ack"),
            "error_rate": self.error_ratio(),
            "avg_latency_ms": avg,
            "p99_latency_ms": p99,
            "window_seconds": self.window,
        }


class _Timed:
    """What :meth:`OperationMetrics.timed` returns (one per timed block)."""

    __slots__ = ("_metrics", "_start")

    def __init__(self, metrics: OperationMetrics) -> None:
        self._metrics = metrics
        self._start = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self._metrics.record("error")
        self._metrics.observe(time.perf_counter() - self._start)

"""Prometheus metrics of a :class:`~queuestore.BackendManager` (the ``prometheus`` extra).

::

    from prometheus_client import REGISTRY, start_http_server
    from queuestore.prometheus import QueueStoreCollector

    collector = QueueStoreCollector(manager, migrations)   # migrations: optional MigrationManager
    REGISTRY.register(collector)
    start_http_server(9108)
    async with anyio.create_task_group() as tg:
        tg.start_soon(collector.run, 15.0)                 # refresh every 15 s

A scrape is synchronous and may come from another thread, while stats and health are
coroutines; so :meth:`QueueStoreCollector.refresh` (or the :meth:`~QueueStoreCollector.run`
loop) takes a snapshot in the event loop and a scrape reports the latest one. The latency
histogram is read live. Metrics, each labelled by ``queue`` and ``backend`` (the backend's
config name):

``queuestore_jobs_{enqueued,dequeued,acked,nacked,dead_lettered}_total``
    counters: what the backend counted since this process opened it.
``queuestore_queue_jobs{state}``
    gauge: jobs stored now, by state (ready, delayed, in_flight, dead).
``queuestore_operation_duration_seconds``
    histogram: the latency of every store operation since the backend opened.
``queuestore_backend_up``
    gauge: 1 when the last health check was not unhealthy and stats answered, else 0.
``queuestore_migration_jobs_total{source}``
    counter: jobs moved by the migrations the given MigrationManager ran (``backend`` is
    the target).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import anyio
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from queuestore._manager import BackendManager
from queuestore._metrics import OperationMetrics
from queuestore._models import BackendStats, HealthLevel, HealthStatus
from queuestore.abc import QueueBackend
from queuestore.errors import BackendError, QueueStoreError
from queuestore.migration import MigrationManager, MigrationStatus

__all__ = ["QueueStoreCollector", "operation_metrics"]

_LABELS = ("queue", "backend")
_COUNTERS = (
    ("queuestore_jobs_enqueued_total", "Jobs enqueued (stored) since the backend opened.", "total_enqueued"),
    (
        "queuestore_jobs_dequeued_total",
        "Jobs handed out with a lease since the backend opened.",
        "total_dequeued",
    ),
    ("queuestore_jobs_acked_total", "Jobs acknowledged since the backend opened.", "total_acked"),
    (
        "queuestore_jobs_nacked_total",
        "Jobs negatively acknowledged since the backend opened.",
        "total_nacked",
    ),
    (
        "queuestore_jobs_dead_lettered_total",
        "Jobs dead-lettered since the backend opened.",
        "total_dead_lettered",
    ),
)
_STATES = (("ready", "queue_depth"), ("delayed", "delayed"), ("in_flight", "in_flight"), ("dead", "dead"))


def operation_metrics(backend: QueueBackend) -> OperationMetrics | None:
    """The operation metrics a backend keeps, or None (e.g. a migration's routing proxy)."""
    for attr in ("metrics", "_metrics"):
        found = getattr(backend, attr, None)
        if isinstance(found, OperationMetrics):
            return found
    return None


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(value)


@dataclass
class _Snapshot:
    stats: dict[str, BackendStats | BackendError] = field(default_factory=dict)
    health: dict[str, HealthStatus] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # queue -> backend name
    migrations: dict[str, MigrationStatus] = field(default_factory=dict)
    taken_at: float = 0.0


class QueueStoreCollector(Collector):
    """A prometheus_client collector over a BackendManager (and optionally a MigrationManager).

    Args:
        manager: the queues to report.
        migrations: the MigrationManager whose migrations to count, if any.
    """

    def __init__(self, manager: BackendManager, migrations: MigrationManager | None = None) -> None:
        self._manager = manager
        self._migrations = migrations
        self._snapshot = _Snapshot()

    @property
    def taken_at(self) -> float:
        """When the reported snapshot was taken (epoch seconds; 0.0 before the first refresh)."""
        return self._snapshot.taken_at

    async def refresh(self) -> None:
        """Take a new snapshot of every queue's stats and health (concurrently; never raises
        for one failing backend: it is reported as down)."""
        stats = await self._manager.stats()
        health = await self._manager.health_check()
        names: dict[str, str] = {}
        for queue in stats:
            try:
                cfg = self._manager.get_backend_config(queue)
            except QueueStoreError:
                continue
            names[queue] = cfg.name or cfg.type
        migrations = self._migrations.list_migrations() if self._migrations is not None else {}
        self._snapshot = _Snapshot(stats, health, names, migrations, time.time())

    async def run(self, interval: float = 15.0) -> None:
        """Refresh every ``interval`` seconds until cancelled."""
        while True:
            await self.refresh()
            await anyio.sleep(interval)

    def describe(self) -> list[Metric]:
        """Nothing up front: the metric names are fixed, the label sets come with each scrape."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The metrics of the latest snapshot, plus the live latency histograms."""
        snap = self._snapshot
        counters = {name: CounterMetricFamily(name, doc, labels=_LABELS) for name, doc, _ in _COUNTERS}
        jobs = GaugeMetricFamily(
            "queuestore_queue_jobs", "Jobs stored now, by state.", labels=(*_LABELS, "state")
        )
        up = GaugeMetricFamily(
            "queuestore_backend_up", "1 when the backend answers and is not unhealthy.", labels=_LABELS
        )
        for queue, stats in sorted(snap.stats.items()):
            labels = [queue, snap.names.get(queue, "")]
            status = snap.health.get(queue)
            healthy = status is not None and status.status != HealthLevel.UNHEALTHY
            up.add_metric(labels, 1.0 if healthy and not isinstance(stats, BaseException) else 0.0)
            if isinstance(stats, BaseException):
                continue
            for name, _, attr in _COUNTERS:
                counters[name].add_metric(labels, float(getattr(stats, attr)))
            for state, attr in _STATES:
                jobs.add_metric([*labels, state], float(getattr(stats, attr)))
        yield from counters.values()
        yield jobs
        yield up
        yield self._durations(snap)
        yield self._migration_jobs(snap)

    def _durations(self, snap: _Snapshot) -> HistogramMetricFamily:
        family = HistogramMetricFamily(
            "queuestore_operation_duration_seconds", "Latency of store operations.", labels=_LABELS
        )
        for queue in self._manager.list_queues():
            try:
                backend = self._manager.get_backend(queue)
            except QueueStoreError:
                continue
            metrics = operation_metrics(backend)
            if metrics is None:
                continue
            hist = metrics.latency_histogram()
            buckets = [(_bound(bound), float(count)) for bound, count in hist["buckets"]]
            family.add_metric([queue, snap.names.get(queue, backend.name)], buckets, hist["sum"])
        return family

    def _migration_jobs(self, snap: _Snapshot) -> CounterMetricFamily:
        family = CounterMetricFamily(
            "queuestore_migration_jobs_total", "Jobs moved by migrations.", labels=(*_LABELS, "source")
        )
        for queue, status in sorted(snap.migrations.items()):
            family.add_metric(
                [queue, status.target_backend, status.source_backend], float(status.migrated_jobs)
            )
        return family

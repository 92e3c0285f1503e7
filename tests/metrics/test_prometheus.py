"""The Prometheus collector over real backends: its text output parses with prometheus_client's
own parser and says what really happened, queue by queue."""

from __future__ import annotations

import uuid

import pytest

pytest.importorskip(
    "prometheus_client", reason="needs the 'prometheus' extra (pip install -e '.[prometheus]')"
)

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

import queuestore as qs
from queuestore._metrics import LATENCY_BUCKETS, OperationMetrics
from queuestore.prometheus import QueueStoreCollector
from tests.servers import RedisServer, ServerFactory

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}"


def scrape(collector: QueueStoreCollector) -> Samples:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def backend(type_: str, url: str, name: str) -> qs.BackendConfig:
    return qs.BackendConfig(type=type_, name=name, url=url, options={"key_prefix": unique("prom") + ":"})


async def exercise(b: qs.QueueBackend) -> None:
    """5 enqueued, 4 dequeued: 2 acked, 1 nacked back to ready, 1 dead-lettered, 1 left leased."""
    for i in range(5):
        assert await b.enqueue(qs.Job(payload=i, max_retries=3))
    got = [await b.dequeue(qs.DequeueOptions(timeout=1.0)) for _ in range(4)]
    jobs = [j for j in got if j is not None]
    assert len(jobs) == 4
    await b.ack(jobs[0])
    await b.ack(jobs[1])
    await b.nack(jobs[2], requeue=True)
    await b.nack(jobs[3], requeue=False)


@pytest.mark.parametrize("type_", ["redis-lists", "redis-streams"])
async def test_counters_gauges_and_histogram(redis_server: RedisServer, type_: str) -> None:
    queue = unique("pq")
    async with qs.BackendManager() as manager:
        await manager.add_backend(queue, backend(type_, redis_server.url, "main"))
        await exercise(manager.get_backend(queue))
        collector = QueueStoreCollector(manager)
        await collector.refresh()
        samples = scrape(collector)
    lab = {"queue": queue, "backend": "main"}
    assert value(samples, "queuestore_jobs_enqueued_total", **lab) == 5
    assert value(samples, "queuestore_jobs_dequeued_total", **lab) == 4
    assert value(samples, "queuestore_jobs_acked_total", **lab) == 2
    assert value(samples, "queuestore_jobs_nacked_total", **lab) >= 1
    assert value(samples, "queuestore_jobs_dead_lettered_total", **lab) == 1
    states = {
        s: value(samples, "queuestore_queue_jobs", **lab, state=s)
        for s in ("ready", "delayed", "in_flight", "dead")
    }
    assert states == {"ready": 2, "delayed": 0, "in_flight": 0, "dead": 1}
    assert value(samples, "queuestore_backend_up", **lab) == 1
    count = value(samples, "queuestore_operation_duration_seconds_count", **lab)
    assert count >= 9  # every store call is timed
    buckets = [value(samples, "queuestore_operation_duration_seconds_bucket", **lab, le=le) for le in
               [repr(b) for b in LATENCY_BUCKETS] + ["+Inf"]]  # fmt: skip
    assert buckets == sorted(buckets)
    assert buckets[-1] == count
    assert value(samples, "queuestore_operation_duration_seconds_sum", **lab) > 0


async def test_a_dead_server_is_down_and_the_others_still_report(
    redis_server: RedisServer, redis_server_factory: ServerFactory
) -> None:
    doomed = redis_server_factory()
    alive_q, dead_q = unique("alive"), unique("dead")
    async with qs.BackendManager(health_timeout=2.0, stats_timeout=2.0) as manager:
        await manager.add_backend(alive_q, backend("redis-lists", redis_server.url, "alive"))
        await manager.add_backend(dead_q, backend("redis-lists", doomed.url, "doomed"))
        await manager.get_backend(alive_q).enqueue(qs.Job(payload=1))
        doomed.kill()
        collector = QueueStoreCollector(manager)
        await collector.refresh()
        samples = scrape(collector)
    assert value(samples, "queuestore_backend_up", queue=alive_q, backend="alive") == 1
    assert value(samples, "queuestore_backend_up", queue=dead_q, backend="doomed") == 0
    assert value(samples, "queuestore_queue_jobs", queue=alive_q, backend="alive", state="ready") == 1
    assert (
        "queuestore_queue_jobs",
        (("backend", "doomed"), ("queue", dead_q), ("state", "ready")),
    ) not in samples


async def test_migration_jobs(redis_server: RedisServer) -> None:
    queue = unique("mq")
    config = qs.StorageConfig(
        backends={
            "src": backend("redis-lists", redis_server.url, "src"),
            "dst": backend("redis-streams", redis_server.url, "dst"),
        },
        queues={queue: qs.QueueConfig(backend="src")},
    )
    async with await qs.BackendManager.from_config(config) as manager:
        assert all(await manager.get_backend(queue).enqueue_many([qs.Job(payload=i) for i in range(30)]))
        async with qs.MigrationManager(manager) as migrations:
            await migrations.start_migration(queue, qs.MigrationOptions(target_backend="dst", batch_size=7))
            final = await migrations.wait(queue)
            assert final.phase == "completed"
            collector = QueueStoreCollector(manager, migrations)
            await collector.refresh()
            samples = scrape(collector)
    assert value(samples, "queuestore_migration_jobs_total", queue=queue, backend="dst", source="src") == 30
    assert value(samples, "queuestore_queue_jobs", queue=queue, backend="dst", state="ready") == 30


async def test_before_the_first_refresh_the_output_is_empty_but_valid() -> None:
    async with qs.BackendManager() as manager:
        collector = QueueStoreCollector(manager)
        assert collector.taken_at == 0.0
        assert scrape(collector) == {}


def test_histogram_buckets_are_cumulative_and_inclusive() -> None:
    m = OperationMetrics()
    for seconds in (0.0005, 0.0006, 3.0, 99.0):
        m.observe(seconds)
    hist = m.latency_histogram()
    bounds = dict(hist["buckets"])
    assert bounds[0.0005] == 1  # le is inclusive
    assert bounds[0.001] == 2
    assert bounds[2.5] == 2
    assert bounds[5.0] == 3
    assert bounds[float("inf")] == 4 == hist["count"]
    assert hist["sum"] == pytest.approx(0.0005 + 0.0006 + 3.0 + 99.0)

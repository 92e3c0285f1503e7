"""OpenTelemetry spans and metrics of a real redis backend, read back with the SDK's in-memory
exporter and reader: names and attributes per the messaging semantic conventions."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest

pytest.importorskip("opentelemetry.sdk", reason="needs the 'otel' extra and opentelemetry-sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import queuestore as qs
from queuestore.otel import TracedBackend, instrument
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def wrap(self, backend: qs.QueueBackend) -> TracedBackend:
        return instrument(backend, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider)

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]


async def make(redis_server: RedisServer, type_: str = "redis-lists") -> qs.QueueBackend:
    cfg = qs.BackendConfig(
        type=type_,
        name="traced",
        url=redis_server.url,
        queue=f"oq-{uuid.uuid4().hex[:8]}",
        options={"key_prefix": f"qs-otel-{uuid.uuid4().hex[:8]}:"},
    )
    return await qs.default_registry().create(type_, cfg)


@pytest.mark.parametrize("type_", ["redis-lists", "redis-streams"])
async def test_spans_and_metrics_of_a_job_lifecycle(redis_server: RedisServer, type_: str) -> None:
    tel = Telemetry()
    async with tel.wrap(await make(redis_server, type_)) as backend:
        queue = backend.queue
        job = qs.Job(payload=1)
        assert await backend.enqueue(job)
        got = await backend.dequeue(qs.DequeueOptions(timeout=1.0))
        assert got is not None
        await backend.ack(got)
        with pytest.raises(qs.JobNotFoundError):
            await backend.ack(got.id)  # acked already
        assert all(await backend.enqueue_many([qs.Job(payload=i) for i in range(3)]))
        batch = await backend.dequeue_many(qs.DequeueOptions(count=5, timeout=1.0))
        assert len(batch) == 3
        await backend.nack(batch[0], requeue=False)
    spans = tel.spans.get_finished_spans()
    assert [s.name for s in spans] == [
        f"enqueue {queue}",
        f"dequeue {queue}",
        f"ack {queue}",
        f"ack {queue}",
        f"enqueue_many {queue}",
        f"dequeue_many {queue}",
        f"nack {queue}",
    ]
    enq, deq, ack, bad_ack, many, deq_many, nack = spans
    assert enq.kind == SpanKind.PRODUCER
    assert dict(enq.attributes or {}) == {
        "messaging.system": "queuestore",
        "messaging.destination.name": queue,
        "messaging.operation.name": "enqueue",
        "messaging.operation.type": "send",
        "messaging.message.id": job.id,
        "queuestore.backend.name": "traced",
    }
    assert (deq.attributes or {})["messaging.operation.type"] == "receive"
    assert (deq.attributes or {})["messaging.message.id"] == job.id
    assert (ack.attributes or {})["messaging.operation.type"] == "settle"
    assert ack.status.status_code == StatusCode.UNSET
    assert bad_ack.status.status_code == StatusCode.ERROR
    assert (bad_ack.attributes or {})["error.type"] == "JOB_NOT_FOUND"
    assert (many.attributes or {})["messaging.batch.message_count"] == 3
    assert (deq_many.attributes or {})["messaging.batch.message_count"] == 3
    assert (nack.attributes or {})["messaging.message.id"] == batch[0].id

    sent = tel.points("messaging.client.sent.messages")
    consumed = tel.points("messaging.client.consumed.messages")
    assert sum(p.value for p in sent) == 4
    assert sum(p.value for p in consumed) == 4
    durations = {
        (p.attributes["messaging.operation.name"], p.attributes.get("error.type")): p.count
        for p in tel.points("messaging.client.operation.duration")
    }
    assert durations == {
        ("enqueue", None): 1,
        ("dequeue", None): 1,
        ("ack", None): 1,
        ("ack", "JOB_NOT_FOUND"): 1,
        ("enqueue_many", None): 1,
        ("dequeue_many", None): 1,
        ("nack", None): 1,
    }


async def test_cancellation_is_not_an_error_and_closing_closes_the_backend(redis_server: RedisServer) -> None:
    tel = Telemetry()
    inner = await make(redis_server)
    backend = tel.wrap(inner)
    async with backend:
        with anyio.move_on_after(0.3) as scope:
            await backend.dequeue(qs.DequeueOptions(timeout=5.0))  # empty queue: waits
        assert scope.cancelled_caught
    assert inner.closed
    (span,) = tel.spans.get_finished_spans()
    assert span.status.status_code == StatusCode.UNSET
    assert "error.type" not in (span.attributes or {})


async def test_operator_calls_are_traced_and_pass_their_results(redis_server: RedisServer) -> None:
    tel = Telemetry()
    async with tel.wrap(await make(redis_server)) as backend:
        queue = backend.queue
        jobs = [qs.Job(payload=i, max_retries=0) for i in range(3)]
        assert all(await backend.enqueue_many(jobs))
        for _ in jobs:
            got = await backend.dequeue()
            assert got is not None
            await backend.nack(got, requeue=False)
        assert await backend.redrive([jobs[0].id]) == 1
        assert await backend.purge(qs.JobState.DEAD, qs.ALL) == 2
        assert await backend.delete(jobs[0].id) is True
        with pytest.raises(qs.InvalidJobError):
            await backend.purge(qs.JobState.IN_FLIGHT, qs.ALL)
    spans = [s for s in tel.spans.get_finished_spans() if s.name.split()[0] in ("redrive", "purge", "delete")]
    assert [s.name for s in spans] == [
        f"redrive {queue}",
        f"purge {queue}",
        f"delete {queue}",
        f"purge {queue}",
    ]
    assert (spans[2].attributes or {})["messaging.message.id"] == jobs[0].id
    assert spans[3].status.status_code == StatusCode.ERROR
    assert (spans[3].attributes or {})["error.type"] == "INVALID_JOB"

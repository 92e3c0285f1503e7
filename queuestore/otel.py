"""OpenTelemetry spans and metrics for a queue backend (the ``otel`` extra: opentelemetry-api).

::

    from queuestore.otel import instrument

    backend = instrument(manager.get_backend("emails"))     # or: instrument(await registry.create(...))
    await backend.enqueue(job)                                # span "enqueue emails" (PRODUCER)

Names follow the OpenTelemetry messaging semantic conventions. Each call of ``enqueue``,
``enqueue_many``, ``dequeue``, ``dequeue_many``, ``ack``, ``ack_many``, ``nack``, ``move`` and
``extend_lease`` is one span named ``"{operation} {queue}"`` with

* ``messaging.system`` (``"queuestore"``), ``messaging.destination.name`` (the queue),
  ``messaging.operation.name`` (the method), ``messaging.operation.type`` (``send`` for
  enqueues, ``receive`` for dequeues, ``settle`` for ack / nack / move / extend_lease);
* ``messaging.message.id`` (one job) or ``messaging.batch.message_count`` (a batch);
* ``queuestore.backend.name``, and on failure ``error.type`` (the error code, such as
  ``JOB_NOT_FOUND``) with the span status ERROR. Cancellation is not an error.

Metrics: ``messaging.client.operation.duration`` (histogram, seconds, every operation above),
``messaging.client.sent.messages`` (jobs stored) and ``messaging.client.consumed.messages`` (jobs
leased), with the same ``messaging.*`` attributes and ``error.type`` when the call failed.

The returned backend wraps the given one and owns it: closing it closes the wrapped backend
(a backend the BackendManager routes is closed by the manager; do not close its wrapper).
Everything else (``length``, ``peek``, ``iter``, ``stats``, ``health``, maintenance) is passed
through without spans.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TypeVar

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from queuestore._args import JobRef, job_ref
from queuestore._job import AllJobs, Job, JobState
from queuestore._models import (
    BackendCapabilities,
    BackendConfig,
    BackendStats,
    DequeueOptions,
    HealthStatus,
    IterOptions,
)
from queuestore.abc import QueueBackend
from queuestore.errors import QueueStoreError, error_code

__all__ = ["SYSTEM", "TracedBackend", "instrument"]

T = TypeVar("T")
SYSTEM = "queuestore"
_SCOPE = "queuestore"
Attributes = dict[str, str | int]


def instrument(
    backend: QueueBackend,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
) -> TracedBackend:
    """Wrap ``backend`` so its operations make spans and metrics (see the module docstring).

    Args:
        backend: the backend to wrap (the wrapper owns it).
        tracer_provider: default: the global one.
        meter_provider: default: the global one.
    """
    return TracedBackend(backend, tracer_provider=tracer_provider, meter_provider=meter_provider)


def _error_type(exc: Exception) -> str:
    return error_code(exc) if isinstance(exc, QueueStoreError) else type(exc).__qualname__


class TracedBackend(QueueBackend):
    """A QueueBackend that times and traces the calls it passes to ``inner``."""

    def __init__(
        self,
        inner: QueueBackend,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        super().__init__(BackendConfig(type="otel", name=inner.name, queue=inner.queue))
        self.inner = inner
        from queuestore import __version__

        self._tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self._duration = meter.create_histogram(
            "messaging.client.operation.duration", unit="s", description="Duration of messaging operations."
        )
        self._sent = meter.create_counter(
            "messaging.client.sent.messages", unit="{message}", description="Messages sent (jobs stored)."
        )
        self._consumed = meter.create_counter(
            "messaging.client.consumed.messages",
            unit="{message}",
            description="Messages received (jobs leased).",
        )
        self._base: Attributes = {"messaging.system": SYSTEM, "messaging.destination.name": inner.queue}

    # -- the traced call --------------------------------------------------------------------
    async def _call(
        self,
        op: str,
        op_type: str,
        call: Callable[[], Awaitable[T]],
        *,
        kind: SpanKind = SpanKind.CLIENT,
        attrs: Attributes | None = None,
        done: Callable[[T, trace.Span, Attributes], None] | None = None,
    ) -> T:
        metric_attrs: Attributes = {
            **self._base,
            "messaging.operation.name": op,
            "messaging.operation.type": op_type,
        }
        span_attrs: Attributes = {**metric_attrs, "queuestore.backend.name": self.inner.name, **(attrs or {})}
        start = time.perf_counter()
        with self._tracer.start_as_current_span(
            f"{op} {self.inner.queue}",
            kind=kind,
            attributes=span_attrs,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                result = await call()
            except Exception as exc:
                error = _error_type(exc)
                metric_attrs["error.type"] = error
                span.set_attribute("error.type", error)
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
            finally:
                self._duration.record(time.perf_counter() - start, metric_attrs)
            if done is not None:
                done(result, span, metric_attrs)
            return result

    def _one(self, job: JobRef) -> Attributes:
        return {"messaging.message.id": job_ref(job)[0]}

    # -- sending ------------------------------------------------------------------------------
    async def enqueue(self, job: Job) -> bool:
        """Traced :meth:`QueueBackend.enqueue` (``send``)."""

        def done(stored: bool, span: trace.Span, attrs: Attributes) -> None:
            if stored:
                self._sent.add(1, attrs)

        return await self._call(
            "enqueue",
            "send",
            lambda: self.inner.enqueue(job),
            kind=SpanKind.PRODUCER,
            attrs={"messaging.message.id": job.id},
            done=done,
        )

    async def enqueue_many(self, jobs: Sequence[Job]) -> list[bool]:
        """Traced :meth:`QueueBackend.enqueue_many` (``send``, a batch)."""

        def done(stored: list[bool], span: trace.Span, attrs: Attributes) -> None:
            self._sent.add(sum(stored), attrs)

        count: Attributes = {"messaging.batch.message_count": len(jobs)}
        return await self._call(
            "enqueue_many",
            "send",
            lambda: self.inner.enqueue_many(jobs),
            kind=SpanKind.PRODUCER,
            attrs=count,
            done=done,
        )

    # -- receiving ----------------------------------------------------------------------------
    async def dequeue(self, options: DequeueOptions | None = None) -> Job | None:
        """Traced :meth:`QueueBackend.dequeue` (``receive``)."""

        def done(job: Job | None, span: trace.Span, attrs: Attributes) -> None:
            if job is not None:
                span.set_attribute("messaging.message.id", job.id)
                self._consumed.add(1, attrs)

        return await self._call("dequeue", "receive", lambda: self.inner.dequeue(options), done=done)

    async def dequeue_many(self, options: DequeueOptions | None = None) -> list[Job]:
        """Traced :meth:`QueueBackend.dequeue_many` (``receive``, a batch)."""

        def done(jobs: list[Job], span: trace.Span, attrs: Attributes) -> None:
            span.set_attribute("messaging.batch.message_count", len(jobs))
            self._consumed.add(len(jobs), attrs)

        return await self._call(
            "dequeue_many", "receive", lambda: self.inner.dequeue_many(options), done=done
        )

    # -- settling -----------------------------------------------------------------------------
    async def ack(self, job: JobRef) -> None:
        """Traced :meth:`QueueBackend.ack` (``settle``)."""
        await self._call("ack", "settle", lambda: self.inner.ack(job), attrs=self._one(job))

    async def ack_many(self, jobs: Sequence[JobRef]) -> list[bool]:
        """Traced :meth:`QueueBackend.ack_many` (``settle``, a batch)."""
        count: Attributes = {"messaging.batch.message_count": len(jobs)}
        return await self._call("ack_many", "settle", lambda: self.inner.ack_many(jobs), attrs=count)

    async def nack(
        self,
        job: JobRef,
        requeue: bool = True,
        *,
        delay: float | timedelta | None = None,
        error: str | None = None,
    ) -> None:
        """Traced :meth:`QueueBackend.nack` (``settle``)."""
        await self._call(
            "nack",
            "settle",
            lambda: (
                self.inner.nack(job, requeue, error=error)
                if delay is None
                else self.inner.nack(job, requeue, delay=delay, error=error)
            ),
            attrs=self._one(job),
        )

    async def move(self, job: JobRef, target_queue: str) -> None:
        """Traced :meth:`QueueBackend.move` (``settle``)."""
        await self._call("move", "settle", lambda: self.inner.move(job, target_queue), attrs=self._one(job))

    async def extend_lease(self, job: JobRef, seconds: float | timedelta) -> float:
        """Traced :meth:`QueueBackend.extend_lease` (``settle``)."""
        return await self._call(
            "extend_lease", "settle", lambda: self.inner.extend_lease(job, seconds), attrs=self._one(job)
        )

    # -- operator ------------------------------------------------------------------------------
    async def redrive(self, job_ids: Sequence[str] | AllJobs, *, to_queue: str | None = None) -> int:
        """Traced :meth:`QueueBackend.redrive` (``settle``)."""
        return await self._call("redrive", "settle", lambda: self.inner.redrive(job_ids, to_queue=to_queue))

    async def purge(self, state: JobState, job_ids: Sequence[str] | AllJobs) -> int:
        """Traced :meth:`QueueBackend.purge` (``settle``)."""
        return await self._call("purge", "settle", lambda: self.inner.purge(state, job_ids))

    async def delete(self, job_id: str) -> bool:
        """Traced :meth:`QueueBackend.delete` (``settle``)."""
        return await self._call(
            "delete", "settle", lambda: self.inner.delete(job_id), attrs={"messaging.message.id": job_id}
        )

    # -- passed through -----------------------------------------------------------------------
    async def length(self) -> int:
        """:meth:`QueueBackend.length` of the wrapped backend."""
        return await self.inner.length()

    async def peek(self, offset: int = 0) -> Job | None:
        """:meth:`QueueBackend.peek` of the wrapped backend."""
        return await self.inner.peek(offset)

    def iter(self, options: IterOptions | None = None) -> AsyncIterator[Job]:
        """:meth:`QueueBackend.iter` of the wrapped backend."""
        return self.inner.iter(options)

    def capabilities(self) -> BackendCapabilities:
        """The wrapped backend's capabilities."""
        return self.inner.capabilities()

    async def stats(self) -> BackendStats:
        """The wrapped backend's stats."""
        return await self.inner.stats()

    async def health(self) -> HealthStatus:
        """The wrapped backend's health."""
        return await self.inner.health()

    async def run_maintenance(self) -> None:
        """The wrapped backend's maintenance loop."""
        await self.inner.run_maintenance()

    async def _open(self) -> None:
        await self.inner.open()

    async def _close(self) -> None:
        await self.inner.aclose()

    def __repr__(self) -> str:
        return f"<TracedBackend {self.inner!r}>"

"""What only the memory backend promises: namespaces, its options, exact capabilities, its clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import pytest

from queuestore import (
    BackendCapabilities,
    BackendConfig,
    ConfigurationError,
    DequeueOptions,
    HealthLevel,
    InvalidJobError,
    Job,
    JobState,
    default_registry,
)
from queuestore.backends.memory import (
    MemoryBackend,
    MemoryBackendFactory,
    MemoryOptions,
    drop_namespace,
    get_namespace,
    unique_namespace,
)

from .conservation import Ledger, ids_in

pytestmark = pytest.mark.anyio


class Clock:
    """A hand-driven clock for a namespace (epoch seconds)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def namespace() -> AsyncIterator[str]:
    name = unique_namespace("memtest")
    yield name
    drop_namespace(name)


async def make(namespace: str, queue: str = "q", **options: object) -> MemoryBackend:
    config = BackendConfig(
        type="memory", name="mem", queue=queue, options={"namespace": namespace, **options}
    )
    return await MemoryBackendFactory().create(config)


async def test_builtin_factory_and_declared_capabilities(namespace: str) -> None:
    factory = default_registry().factory("memory")
    assert isinstance(factory, MemoryBackendFactory)
    backend = await factory.create(BackendConfig(type="memory", queue="q", options={"namespace": namespace}))
    assert isinstance(backend, MemoryBackend)
    assert backend.capabilities() == BackendCapabilities(
        atomic_ack=True,
        idempotent_enqueue=True,
        transactions=True,
        time_to_live=True,
        prioritization=True,
        batch_operations=True,
    )
    health = await backend.health()
    assert health.status == HealthLevel.HEALTHY
    assert health.details["namespace"] == namespace
    assert "open" in repr(backend)
    await backend.aclose()
    assert "closed" in repr(backend)


async def test_backends_on_one_namespace_share_queues(namespace: str) -> None:
    a, b = await make(namespace), await make(namespace)
    elsewhere = await make(unique_namespace("memtest"))
    job = Job(payload=1)
    await a.enqueue(job)
    got = await b.dequeue()
    assert got is not None
    assert got.id == job.id
    assert await elsewhere.length() == 0
    await a.ack(got)


async def test_namespace_defaults_to_the_config_name() -> None:
    name = unique_namespace("named")
    try:
        backend = await MemoryBackendFactory().create(BackendConfig(type="memory", name=name))
        assert backend.namespace == name
        assert backend.queue == name
        unnamed = MemoryBackend(BackendConfig(type="memory"))
        assert unnamed.namespace == "default"
        assert unnamed.queue == "default"
    finally:
        drop_namespace(name)


def test_options_parse_durations_and_reject_bad_values() -> None:
    factory = MemoryBackendFactory()
    opts = factory.parse(
        BackendConfig(type="memory", options={"visibility_timeout": "250ms", "reclaim_interval": 2})
    )
    assert isinstance(opts, MemoryOptions)
    assert (opts.visibility_timeout, opts.reclaim_interval, opts.idempotency_window) == (0.25, 2.0, 86400.0)
    bad: list[tuple[BackendConfig, str]] = [
        (BackendConfig(type="memory", options={"visibility_timeout": 0}), "options.visibility_timeout"),
        (BackendConfig(type="memory", options={"reclaim_interval": "0s"}), "options.reclaim_interval"),
        (BackendConfig(type="memory", options={"encoding": "xml"}), "options.encoding"),
        (BackendConfig(type="memory", options={"namespace": 3}), "options.namespace"),
        (BackendConfig(type="memory", url="redis://localhost:1/0"), "url"),
        (BackendConfig(type="memory", cluster_mode=True), "cluster_mode"),
    ]
    for config, field in bad:
        with pytest.raises(ConfigurationError) as info:
            factory.validate(config)
        assert info.value.field == field


async def test_time_moves_with_the_namespace_clock(namespace: str) -> None:
    clock = Clock()
    get_namespace(namespace).clock = clock
    backend = await make(namespace, visibility_timeout=10)
    ledger = Ledger()
    slow, later, brief = Job(payload=1), Job(payload=2, available_at=clock.now + 5), Job(payload=3)
    brief.expires_at = clock.now + 3
    for job in (slow, later, brief):
        await backend.enqueue(job)
    ledger.add([slow, brief])
    ledger.add([later], JobState.DELAYED)
    got = await backend.dequeue()
    assert got is not None
    assert got.lease_deadline == clock.now + 10
    assert got.started_at == clock.now
    ledger.expect(slow.id, JobState.IN_FLIGHT)
    await ledger.check(backend)
    clock.now += 4  # brief expires
    ledger.remove(brief.id, "expired")
    await ledger.check(backend)
    clock.now += 2  # later is due
    ledger.expect(later.id, JobState.READY)
    await ledger.check(backend)
    clock.now += 5  # slow's lease is over
    ledger.expect(slow.id, JobState.READY)
    snap = await ledger.check(backend)
    assert snap[slow.id].retry_count == 1
    assert await ids_in(backend, JobState.READY) == [later.id, slow.id]
    stats = await backend.stats()
    assert stats.total_expired == 1
    assert stats.total_enqueued == 3


async def test_job_already_expired_at_enqueue_is_dropped_and_counted(namespace: str) -> None:
    clock = Clock()
    get_namespace(namespace).clock = clock
    backend = await make(namespace)
    assert await backend.enqueue(Job(payload=1, expires_at=clock.now - 1)) is True
    assert await backend.length() == 0
    assert (await backend.stats()).total_expired == 1


async def test_payload_comes_back_as_its_encoding_stores_it(namespace: str) -> None:
    packed = await make(namespace)
    await packed.enqueue(Job(payload={"blob": b"\x00\xff", "t": (1, 2)}))
    got = await packed.dequeue()
    assert got is not None
    assert got.payload == {"blob": b"\x00\xff", "t": [1, 2]}
    as_json = await make(namespace, "q-json", encoding="json")
    await as_json.enqueue(Job(payload={"blob": b"\x00\xff"}))
    got = await as_json.dequeue()
    assert got is not None
    assert got.payload == {"blob": "AP8="}
    with pytest.raises(InvalidJobError) as info:
        await as_json.enqueue(Job(payload={"n": float("nan"), "c": 1j}))
    assert info.value.field == "payload"


async def test_a_field_of_the_wrong_type_is_named(namespace: str) -> None:
    backend = await make(namespace)
    with pytest.raises(InvalidJobError) as info:
        await backend.enqueue(Job(payload=1, metadata={"attempts": 3}))  # type: ignore[dict-item]
    assert info.value.field == "metadata"


async def test_re_enqueued_dequeued_job_is_stored_without_its_lease(namespace: str) -> None:
    backend = await make(namespace)
    job = Job(payload=1)
    await backend.enqueue(job)
    got = await backend.dequeue(DequeueOptions(consumer_id="w1"))
    assert got is not None
    await backend.ack(got)
    assert await backend.enqueue(got) is True  # acked: the id is free again
    stored = await backend.peek(0)
    assert stored is not None
    assert stored.lease_token is None
    assert stored.state == JobState.READY
    assert stored.attempt == 1


async def test_stats_report_the_oldest_lease(namespace: str) -> None:
    clock = Clock()
    get_namespace(namespace).clock = clock
    backend = await make(namespace)
    assert (await backend.stats()).oldest_pending_age_s is None
    await backend.enqueue(Job(payload=1))
    await backend.dequeue()
    clock.now += 7
    assert (await backend.stats()).oldest_pending_age_s == 7


async def test_concurrent_consumers_share_the_work(namespace: str) -> None:
    """Each call yields to the loop as a network round trip would: 8 consumers, 8 shares."""
    backend = await make(namespace)
    jobs = [Job(payload=i) for i in range(800)]
    await backend.enqueue_many(jobs)
    taken: dict[int, list[str]] = {c: [] for c in range(8)}

    async def consume(c: int) -> None:
        while (job := await backend.dequeue(DequeueOptions(timeout=0))) is not None:
            taken[c].append(job.id)
            await backend.ack(job)

    async with anyio.create_task_group() as tg:
        for c in range(8):
            tg.start_soon(consume, c)
    every = [job_id for ids in taken.values() for job_id in ids]
    assert sorted(every) == sorted(j.id for j in jobs)  # each job once
    assert min(len(ids) for ids in taken.values()) >= 800 // 8 // 4  # a fair share each, not 0
    assert await backend.length() == 0


async def _witnessed(op: Callable[[], Awaitable[object]]) -> bool:
    """Whether a task started just before ``op`` ran before ``op`` returned (``op`` yielded)."""
    ran = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: _set(ran))
        await op()
        yielded = ran.is_set()
    return yielded


async def _set(event: anyio.Event) -> None:
    event.set()


async def test_every_public_coroutine_passes_a_checkpoint(namespace: str) -> None:
    backend, other = await make(namespace), await make(namespace, "other")
    jobs = [Job(payload=i) for i in range(8)]
    await backend.enqueue_many(jobs[:6])
    leased = [await backend.dequeue() for _ in range(4)]
    a, b, c, d = (job for job in leased if job is not None)
    ops: dict[str, Callable[[], Awaitable[object]]] = {
        "enqueue": lambda: backend.enqueue(jobs[6]),
        "enqueue_many": lambda: backend.enqueue_many([jobs[7]]),
        "dequeue": lambda: backend.dequeue(DequeueOptions(timeout=0)),
        "dequeue_many": lambda: backend.dequeue_many(DequeueOptions(count=2, timeout=0)),
        "ack": lambda: backend.ack(a),
        "ack_many": lambda: backend.ack_many([b]),
        "nack": lambda: backend.nack(c),
        "extend_lease": lambda: backend.extend_lease(d, 60),
        "move": lambda: backend.move(d, "other"),
        "length": backend.length,
        "peek": backend.peek,
        "get_jobs": lambda: backend.get_jobs([a.id]),
        "stats": backend.stats,
        "health": backend.health,
        "iter": lambda: _first(backend.iter()),
        "migration_hold": lambda: other.migration_hold("m", JobState.READY, 1),
        "migration_held": lambda: other.migration_held("m"),
        "migration_release": lambda: other.migration_release("m", [d.id]),
        "migration_restore": lambda: other.migration_restore("m"),
        "import_jobs": lambda: other.import_jobs([Job(payload=9)]),
    }
    silent = [name for name, op in ops.items() if not await _witnessed(op)]
    assert silent == []


async def _first(jobs: AsyncIterator[Job]) -> Job | None:
    async for job in jobs:
        return job
    return None

"""Lifecycle (close, context manager), typed errors for bad input, capabilities, stats, health."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import msgspec
import pytest

from queuestore import (
    BackendCapabilities,
    BackendClosedError,
    ConfigurationError,
    DequeueOptions,
    HealthLevel,
    InvalidJobError,
    IterOptions,
    Job,
    JobState,
    LeaseLostError,
    QueueBackend,
)

from .conftest import BackendMaker

pytestmark = pytest.mark.anyio


def closed_ops(b: QueueBackend) -> dict[str, Callable[[], Awaitable[Any]]]:
    async def walk() -> None:
        async for _ in b.iter():
            pass

    return {
        "enqueue": lambda: b.enqueue(Job(payload=1)),
        "enqueue_many": lambda: b.enqueue_many([Job(payload=1)]),
        "dequeue": lambda: b.dequeue(),
        "dequeue_many": lambda: b.dequeue_many(DequeueOptions(count=2)),
        "ack": lambda: b.ack("some-id"),
        "ack_many": lambda: b.ack_many(["some-id"]),
        "nack": lambda: b.nack("some-id"),
        "extend_lease": lambda: b.extend_lease("some-id", 5),
        "move": lambda: b.move("some-id", "elsewhere"),
        "length": b.length,
        "peek": b.peek,
        "iter": walk,
        "stats": b.stats,
        "migration_hold": lambda: b.migration_hold("m", JobState.READY, 10),
        "import_jobs": lambda: b.import_jobs([Job(payload=1)]),
    }


async def test_closed_backend_raises_backend_closed(backend: QueueBackend) -> None:
    await backend.enqueue(Job(payload=1))
    await backend.aclose()
    await backend.aclose()  # idempotent
    await backend.close()  # alias
    assert backend.closed
    for name, op in closed_ops(backend).items():
        with pytest.raises(BackendClosedError):
            await op()
        assert name  # the op name shows in the failure's locals
    health = await backend.health()  # never raises
    assert health.status != HealthLevel.HEALTHY


async def test_close_wakes_a_waiting_dequeue(backend: QueueBackend) -> None:
    failures: list[BaseException] = []

    async def consume() -> None:
        try:
            await backend.dequeue(DequeueOptions(timeout=10.0))
        except BackendClosedError as exc:
            failures.append(exc)

    with anyio.fail_after(5.0):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.sleep(0.2)
            await backend.aclose()
    assert len(failures) == 1


async def test_async_with_closes(make_backend: BackendMaker) -> None:
    backend = await make_backend()
    async with backend as b:
        assert b is backend
        assert not backend.closed
        await b.enqueue(Job(payload=1))
    assert backend.closed


@pytest.mark.parametrize(
    ("job", "field"),
    [
        (Job(payload=object()), "payload"),
        (Job(payload={"nested": [1j]}), "payload"),
        (Job(payload=1, priority=10), "priority"),
        (Job(payload=1, priority=-1), "priority"),
        (Job(payload=1, id=""), "id"),
        (Job(payload=1, max_retries=-1), "max_retries"),
        (Job(payload=1, expires_at=float("nan")), "expires_at"),
        (Job(payload=1, available_at=float("inf")), "available_at"),
        (Job(payload=1, queue="someone-elses-queue"), "queue"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_invalid_job_is_refused_naming_the_field(backend: QueueBackend, job: Job, field: str) -> None:
    with pytest.raises(InvalidJobError) as info:
        await backend.enqueue(job)
    assert info.value.field == field
    assert await backend.length() == 0


async def test_bad_arguments_raise_typed_errors(backend: QueueBackend) -> None:
    await backend.enqueue(Job(payload=1))
    cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("timeout", lambda: backend.dequeue(DequeueOptions(timeout=-1))),
        ("visibility_timeout", lambda: backend.dequeue(DequeueOptions(visibility_timeout=0))),
        ("offset", lambda: backend.peek(-1)),
        ("job", lambda: backend.ack("")),
    ]
    if backend.capabilities().batch_operations:
        cases.append(("count", lambda: backend.dequeue_many(DequeueOptions(count=0))))
    for field, op in cases:
        with pytest.raises(InvalidJobError) as info:
            await op()
        assert info.value.field == field
    with pytest.raises(InvalidJobError) as info:
        async for _ in backend.iter(IterOptions(count=0)):
            pass
    assert info.value.field == "count"
    got = await backend.dequeue()
    assert got is not None
    leased: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("delay", lambda: backend.nack(got, delay=-1)),
        ("seconds", lambda: backend.extend_lease(got, 0)),
    ]
    for field, op in leased:
        with pytest.raises(InvalidJobError) as info:
            await op()
        assert info.value.field == field
    await backend.ack(got)  # the refused calls changed nothing


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"no_such_option": 1}, "options.no_such_option"),
        ({"visibility_timeout": "soon"}, "options.visibility_timeout"),
        ({"visibility_timeout": "-5s"}, "options.visibility_timeout"),
        ({"idempotency_window": "1x"}, "options.idempotency_window"),
    ],
)
async def test_bad_option_is_a_configuration_error(
    make_backend: BackendMaker, options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        await make_backend(**options)
    assert info.value.field == field


async def test_capabilities_are_a_stable_declaration(backend: QueueBackend) -> None:
    caps = backend.capabilities()
    assert isinstance(caps, BackendCapabilities)
    assert caps == backend.capabilities()


async def test_stats_count_operations(backend: QueueBackend) -> None:
    for i in range(3):
        await backend.enqueue(Job(payload=i))
    a, b = await backend.dequeue(), await backend.dequeue()
    assert a is not None
    assert b is not None
    await backend.ack(a)
    stats = await backend.stats()
    assert stats.queue == backend.queue
    assert stats.backend == backend.name
    assert (stats.queue_depth, stats.delayed, stats.in_flight, stats.dead) == (1, 0, 1, 0)
    assert stats.total_enqueued >= 3
    assert stats.total_dequeued >= 2
    assert stats.total_acked >= 1
    assert stats.enqueue_rate > 0
    assert stats.dequeue_rate > 0
    assert stats.ack_rate > 0
    assert 0.0 <= stats.error_rate <= 1.0
    assert stats.window_seconds > 0
    assert stats.p99_latency_ms >= 0
    assert stats.avg_latency_ms >= 0


async def test_health_reports_a_state(backend: QueueBackend) -> None:
    health = await backend.health()
    assert health.status in (HealthLevel.HEALTHY, HealthLevel.DEGRADED), health.message
    assert health.checked_at > 0


@pytest.mark.parametrize(
    "token",
    [
        "",
        "x",
        "\x1f\x1f\x1f",
        "g\x1fc\x1f1-1\x1f\u00b2",  # a digit to str.isdigit, not to int()
        "g\x1fc\x1f1-1\x1f\u0661",  # a digit to int() too
        "g\x1fc\x1f1-1\x1f-1",
        "\ud800",  # a lone surrogate: UTF-8 cannot carry it
    ],
)
async def test_a_garbled_lease_token_is_refused_with_a_typed_error(backend: QueueBackend, token: str) -> None:
    """A job whose lease token someone altered (digits of another script, a lone surrogate, a
    negative count) is refused as a lost lease or an invalid argument, never with a bare
    ValueError, and the real holder still owns the job."""
    await backend.enqueue(Job(id="held", payload=1))
    got = await backend.dequeue()
    assert got is not None
    forged = msgspec.structs.replace(got, lease_token=token)
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: backend.ack(forged),
        lambda: backend.nack(forged),
        lambda: backend.extend_lease(forged, 5),
        lambda: backend.move(forged, "elsewhere"),
    ]
    for call in calls:
        with pytest.raises((LeaseLostError, InvalidJobError)):
            await call()
    if backend.capabilities().batch_operations:
        outcome: Any
        try:
            outcome = await backend.ack_many([forged])
        except InvalidJobError as exc:
            outcome = exc.field
        assert outcome in ([False], "lease_token")
    await backend.ack(got)  # the holder's lease was untouched


async def test_a_lease_token_works_for_its_own_job_only(backend: QueueBackend) -> None:
    """The token of one leased job, carried by another job (leased or ready), ends neither lease:
    every call is refused and both jobs stay as they were."""
    for jid in ("a", "b", "c"):
        assert await backend.enqueue(Job(id=jid, payload=jid))
    a = await backend.dequeue()
    b = await backend.dequeue()
    assert a is not None
    assert b is not None
    assert (a.id, b.id) == ("a", "b")
    for other in ("b", "c"):  # b leased under its own token, c ready
        crossed = msgspec.structs.replace(a, id=other)
        calls: list[Callable[[Job], Awaitable[Any]]] = [
            backend.ack,
            backend.nack,
            lambda job: backend.extend_lease(job, 5),
            lambda job: backend.move(job, "elsewhere"),
        ]
        for call in calls:
            with pytest.raises(LeaseLostError):
                await call(crossed)
        if backend.capabilities().batch_operations:
            assert await backend.ack_many([crossed]) == [False]
    await backend.ack(a)  # both holders' leases were untouched
    await backend.ack(b)
    rest = await backend.dequeue()
    assert rest is not None
    assert rest.id == "c"


async def test_an_id_utf8_cannot_carry_is_refused_by_name(backend: QueueBackend) -> None:
    """A job id holding a lone surrogate cannot reach a store: every call that takes an id
    refuses it with InvalidJobError naming the argument, and nothing changes."""
    assert await backend.enqueue(Job(id="keep", payload=1))
    bad = "\ud800"
    cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("id", lambda: backend.enqueue(Job(id=bad, payload=1))),
        ("job", lambda: backend.ack(bad)),
        ("job_id", lambda: backend.delete(bad)),
        ("job_ids", lambda: backend.get_jobs([bad])),
        ("job_ids", lambda: backend.redrive([bad])),
        ("job_ids", lambda: backend.purge(JobState.DEAD, [bad])),
    ]
    if backend.capabilities().batch_operations:
        mixed = [Job(id="fine", payload=1), Job(id=bad, payload=2)]  # checked before any is stored
        cases.append(("id", lambda: backend.enqueue_many(mixed)))
    for field, call in cases:
        with pytest.raises(InvalidJobError) as info:
            await call()
        assert info.value.field == field
    assert await backend.length() == 1
    assert [j.id if j else None for j in await backend.get_jobs(["keep", "fine"])] == ["keep", None]


async def test_a_text_field_utf8_cannot_carry_is_refused_by_name(backend: QueueBackend) -> None:
    """A lone surrogate in a job's type, tags, metadata or idempotency key is refused with
    InvalidJobError naming that field, not the payload, and nothing is stored."""
    bad = "\udc80"
    cases = {
        "type": Job(id="t", payload=1, type=bad),
        "idempotency_key": Job(id="k", payload=1, idempotency_key=bad),
        "tags": Job(id="g", payload=1, tags=["fine", bad]),
        "metadata": Job(id="m", payload=1, metadata={"k": bad}),
        "payload": Job(id="p", payload={"k": bad}),
    }
    for field, job in cases.items():
        with pytest.raises(InvalidJobError) as info:
            await backend.enqueue(job)
        assert info.value.field == field
        if backend.capabilities().batch_operations:
            with pytest.raises(InvalidJobError) as info:
                await backend.enqueue_many([Job(id="fine", payload=1), job])
            assert info.value.field == field
    assert await backend.length() == 0
    assert await backend.get_jobs([*(j.id for j in cases.values()), "fine"]) == [None] * 6


async def test_a_body_field_of_the_wrong_type_is_refused_by_name(backend: QueueBackend) -> None:
    """A field that encodes but would not decode as its declared type (metadata values that
    are not text, a tag that is a number, a type that is not a string) is refused with
    InvalidJobError naming it, alone or in a batch, and nothing is stored."""
    cases = {
        "metadata": Job(id="m", payload=1, metadata={"attempts": 3}),  # type: ignore[dict-item]
        "tags": Job(id="g", payload=1, tags=["fine", 7]),  # type: ignore[list-item]
        "type": Job(id="t", payload=1, type=5),  # type: ignore[arg-type]
    }
    for field, job in cases.items():
        with pytest.raises(InvalidJobError) as info:
            await backend.enqueue(job)
        assert info.value.field == field
        if backend.capabilities().batch_operations:
            with pytest.raises(InvalidJobError) as info:
                await backend.enqueue_many([Job(id="fine", payload=1), job])
            assert info.value.field == field
    assert await backend.length() == 0
    assert await backend.get_jobs([*(j.id for j in cases.values()), "fine"]) == [None] * 4

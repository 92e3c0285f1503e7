"""Bad input gets a clear typed error naming the field and loses nothing; messages say what
happened. Every backend type, the Redis ones on a real server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

import queuestore as qs
from queuestore._durations import to_seconds
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio

TYPES = ["memory", "redis-lists", "redis-streams"]


def config(type_: str, server: RedisServer, queue: str | None, **extra: Any) -> qs.BackendConfig:
    """A config of ``type_`` with its own key space (memory: namespace; Redis: key_prefix)."""
    space = uuid.uuid4().hex[:8]
    if type_ == "memory":
        return qs.BackendConfig(type=type_, name="b", queue=queue, options={"namespace": space, **extra})
    return qs.BackendConfig(
        type=type_, name="b", queue=queue, url=server.url, options={"key_prefix": f"t{space}:", **extra}
    )


@pytest.fixture(params=TYPES)
async def backend(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> AsyncIterator[qs.QueueBackend]:
    cfg = config(request.param, redis_server, "inputs")
    async with await qs.default_registry().create(cfg.type, cfg) as made:
        yield made


def deep(n: int) -> Any:
    value: Any = 1
    for _ in range(n):
        value = [value]
    return value


# -- payloads --------------------------------------------------------------------------------------


async def test_a_payload_nested_too_deep_is_an_invalid_job(backend: qs.QueueBackend) -> None:
    await backend.enqueue(qs.Job(id="shallow", payload=deep(50)))
    for payload in (deep(2000), {"a": deep(5000)}):
        with pytest.raises(qs.InvalidJobError) as info:
            await backend.enqueue(qs.Job(payload=payload))
        assert info.value.field == "payload"
        assert "nested too deeply" in str(info.value)
        with pytest.raises(qs.InvalidJobError):
            await backend.enqueue_many([qs.Job(id="ok-1"), qs.Job(payload=payload)])
    assert await backend.length() == 1  # nothing half-stored, nothing lost
    got = await backend.dequeue(qs.DequeueOptions(timeout=0))
    assert got is not None
    assert got.id == "shallow"
    assert got.payload == deep(50)


def test_a_stored_entry_nested_too_deep_is_a_serialization_error() -> None:
    # a msgpack map {"id": "x", "payload": [[[...1...]]]} written by someone else
    data = b"\x82\xa2id\xa1x\xa7payload" + b"\x91" * 5000 + b"\x01"
    with pytest.raises(qs.SerializationError, match="nested too deeply"):
        qs.JobCodec().decode(data)


# -- queue names -------------------------------------------------------------------------------------

BAD_NAMES = ["a\tb", "a b", "a\nb", "a\x0bb", "a\x7fb", "a\u00a0b", "a\u2003b", "{a}", "a\x00b"]


@pytest.mark.parametrize("type_", TYPES)
@pytest.mark.parametrize("name", BAD_NAMES, ids=[repr(n) for n in BAD_NAMES])
async def test_whitespace_and_control_characters_are_refused_in_queue_names(
    redis_server: RedisServer, type_: str, name: str
) -> None:
    cfg = config(type_, redis_server, name)
    with pytest.raises(qs.ConfigurationError) as info:
        qs.default_registry().validate(type_, cfg)
    assert info.value.field == "queue"
    with pytest.raises(qs.ConfigurationError) as info:
        await qs.default_registry().create(type_, cfg)
    assert info.value.field == "queue"


@pytest.mark.parametrize("type_", TYPES)
async def test_an_ordinary_queue_name_is_accepted(redis_server: RedisServer, type_: str) -> None:
    cfg = config(type_, redis_server, "emails.v2-x_y:z/é")
    async with await qs.default_registry().create(type_, cfg) as made:
        assert made.queue == "emails.v2-x_y:z/é"


@pytest.mark.parametrize("type_", TYPES)
async def test_an_empty_queue_is_refused_not_replaced_by_the_name(
    redis_server: RedisServer, type_: str
) -> None:
    cfg = config(type_, redis_server, "")
    with pytest.raises(qs.ConfigurationError) as info:
        qs.default_registry().validate(type_, cfg)
    assert info.value.field == "queue"
    with pytest.raises(qs.ConfigurationError) as info:
        await qs.default_registry().create(type_, cfg)
    assert info.value.field == "queue"
    unset = config(type_, redis_server, None)  # unset still means "serve the name"
    async with await qs.default_registry().create(type_, unset) as made:
        assert made.queue == "b"


# -- acks ------------------------------------------------------------------------------------------------


async def test_a_second_ack_says_the_job_is_not_in_flight(backend: qs.QueueBackend) -> None:
    await backend.enqueue(qs.Job(id="once"))
    got = await backend.dequeue(qs.DequeueOptions(timeout=0))
    assert got is not None
    await backend.ack(got)
    for again in (got, got.id):
        with pytest.raises(qs.JobNotFoundError) as info:
            await backend.ack(again)
        assert "not in flight" in str(info.value)
        assert "already acked?" in str(info.value)
        assert info.value.job_id == "once"


# -- dequeue arguments -----------------------------------------------------------------------------------


async def test_dequeue_with_a_bare_timeout_is_a_clear_type_error(redis_server: RedisServer) -> None:
    cfg = config("memory", redis_server, "bare")
    async with await qs.default_registry().create("memory", cfg) as made:
        await made.enqueue(qs.Job(id="kept"))
        for call, arg in ((made.dequeue, 1.0), (made.dequeue, timedelta(seconds=1)), (made.dequeue_many, 2)):
            with pytest.raises(TypeError, match=r"DequeueOptions\(timeout="):
                await call(arg)  # type: ignore[operator]
        with pytest.raises(TypeError, match="DequeueOptions or None, got str"):
            await made.dequeue("1.0")  # type: ignore[arg-type]
        assert await made.length() == 1


# -- durations -------------------------------------------------------------------------------------------

HUGE = [1e308, 10**400, timedelta.max, "1e308", "99999999999999999999d"]


@pytest.mark.parametrize("value", HUGE, ids=repr)
def test_a_huge_duration_is_a_configuration_error(value: Any) -> None:
    with pytest.raises(qs.ConfigurationError, match="at most"):
        to_seconds(value, "visibility_timeout")
    assert to_seconds(100 * 365 * 86400, "ttl") == 100 * 365 * 86400  # a century is fine


def test_huge_job_durations_are_invalid_jobs() -> None:
    job = qs.Job(id="d")
    for make, field in ((job.delayed, "delay"), (job.with_ttl, "ttl")):
        with pytest.raises(qs.InvalidJobError) as info:
            make(1e308)
        assert info.value.field == field


async def test_huge_durations_are_typed_errors_and_change_nothing(backend: qs.QueueBackend) -> None:
    for field in ("available_at", "expires_at"):
        with pytest.raises(qs.InvalidJobError) as info:
            await backend.enqueue(qs.Job(**{field: 1e308}))
        assert info.value.field == field
    with pytest.raises(qs.InvalidJobError) as info:
        await backend.dequeue(qs.DequeueOptions(visibility_timeout=1e308))
    assert info.value.field == "visibility_timeout"
    assert str(info.value).count("visibility_timeout") == 1
    await backend.enqueue(qs.Job(id="held"))
    got = await backend.dequeue(qs.DequeueOptions(timeout=0))
    assert got is not None
    assert got.id == "held"
    with pytest.raises(qs.InvalidJobError) as info:
        await backend.extend_lease(got, 1e308)
    assert info.value.field == "seconds"
    with pytest.raises(qs.InvalidJobError) as info:
        await backend.nack(got, requeue=True, delay=1e308)
    assert info.value.field == "delay"
    await backend.ack(got)  # the lease is still the holder's
    assert await backend.length() == 0


# -- moves (memory; the Redis scripts keep their own rule, see docs/errors.md) ---------------------------


async def test_moving_an_id_only_the_target_holds_is_not_found(redis_server: RedisServer) -> None:
    src_cfg = config("memory", redis_server, "src")
    dst_cfg = qs.BackendConfig(type="memory", name="d", queue="dst", options=dict(src_cfg.options))
    async with (
        await qs.default_registry().create("memory", src_cfg) as src,
        await qs.default_registry().create("memory", dst_cfg) as dst,
    ):
        await dst.enqueue(qs.Job(id="theirs", payload="dst's own"))
        with pytest.raises(qs.JobNotFoundError) as info:
            await src.move("theirs", "dst")
        assert "not in queue 'src'" in str(info.value)
        mine = qs.Job(id="mine", payload="src's")
        await src.enqueue(mine)
        await src.move("mine", "dst")
        await src.move("mine", "dst")  # a retried move of a job moved from here: still done, once
        assert await src.length() == 0
        assert await dst.length() == 2
        ids = {j.id: (j.payload, j.origin_queue) async for j in dst.iter(qs.IterOptions())}
        assert ids == {"theirs": ("dst's own", None), "mine": ("src's", "src")}

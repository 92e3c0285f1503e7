"""Log lines for reclaims, buried garbage and dead-letters, from real backends: under
``queuestore.<area>``, silent by default (NullHandler), with structured ``extra`` fields."""

from __future__ import annotations

import logging
import uuid

import anyio
import pytest

import queuestore as qs
from tests.servers import RedisServer

pytestmark = pytest.mark.anyio


def unique(stem: str) -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}"


def events(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == event]


def lists_config(url: str, **options: object) -> qs.BackendConfig:
    prefix = unique("qs-log") + ":"
    return qs.BackendConfig(
        type="redis-lists",
        name="logged",
        url=url,
        queue=unique("lq"),
        options={"key_prefix": prefix, **options},
    )


def test_the_package_logger_is_silent_by_default() -> None:
    root = logging.getLogger("queuestore")
    assert any(isinstance(h, logging.NullHandler) for h in root.handlers)


async def test_reclaim_is_logged_with_fields(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = lists_config(redis_server.url, visibility_timeout=0.2)
    caplog.set_level(logging.INFO, logger="queuestore")
    async with await qs.default_registry().create(cfg.type, cfg) as backend:
        await backend.enqueue(qs.Job(payload=1, max_retries=5))
        assert await backend.dequeue(qs.DequeueOptions(timeout=1.0)) is not None
        assert events(caplog, "sweep") == []  # nothing reclaimed yet: no line
        await anyio.sleep(0.4)
        assert await backend.reclaim() == 1  # type: ignore[attr-defined]
    (line,) = events(caplog, "sweep")
    assert line.name == "queuestore.backends.redis_lists"
    assert line.levelno == logging.INFO
    assert (line.queue, line.backend, line.reclaimed, line.dead_lettered) == (cfg.queue, "logged", 1, 0)  # type: ignore[attr-defined]
    assert "reclaimed=1" in line.getMessage()


async def test_expired_lease_past_retries_is_a_dead_letter_warning(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = lists_config(redis_server.url, visibility_timeout=0.2)
    caplog.set_level(logging.INFO, logger="queuestore")
    async with await qs.default_registry().create(cfg.type, cfg) as backend:
        await backend.enqueue(qs.Job(payload=1, max_retries=0))
        assert await backend.dequeue(qs.DequeueOptions(timeout=1.0)) is not None
        await anyio.sleep(0.4)
        assert await backend.dequeue(qs.DequeueOptions(timeout=0)) is None  # its sweep dead-letters it
    (line,) = events(caplog, "sweep")
    assert line.levelno == logging.WARNING
    assert line.dead_lettered == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("type_", ["redis-lists", "redis-streams"])
async def test_nack_dead_letter_is_logged(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture, type_: str
) -> None:
    queue = unique("dq")
    options = {"key_prefix": unique("qs-log") + ":"}
    cfg = qs.BackendConfig(type=type_, name="n", url=redis_server.url, queue=queue, options=options)
    caplog.set_level(logging.INFO, logger="queuestore")
    async with await qs.default_registry().create(type_, cfg) as backend:
        job = qs.Job(payload=1, max_retries=0)
        await backend.enqueue(job)
        got = await backend.dequeue(qs.DequeueOptions(timeout=1.0))
        assert got is not None
        await backend.nack(got, requeue=False)
    (line,) = events(caplog, "dead_lettered")
    assert line.levelno == logging.WARNING
    assert (line.queue, line.job_id) == (queue, job.id)  # type: ignore[attr-defined]


async def test_buried_garbage_is_logged(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    cfg = lists_config(redis_server.url)
    caplog.set_level(logging.INFO, logger="queuestore")
    async with await qs.default_registry().create(cfg.type, cfg) as backend:
        bad, good = qs.Job(payload=1, priority=9), qs.Job(payload=2)
        await backend.enqueue(bad)
        await backend.enqueue(good)
        base = f"{cfg.options['key_prefix']}{{{cfg.queue}}}"
        redis_server.sync_client().hset(f"{base}:jobs", bad.id, b"\xc1 not msgpack")
        got = await backend.dequeue(qs.DequeueOptions(timeout=1.0))
        assert got is not None
        assert got.id == good.id
    (line,) = events(caplog, "sweep")
    assert line.levelno == logging.WARNING
    assert (line.buried, line.queue) == (1, cfg.queue)  # type: ignore[attr-defined]


async def test_memory_sweep_dead_letter_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    cfg = qs.BackendConfig(type="memory", name="m", queue=unique("mq"), options={"visibility_timeout": 0.1})
    caplog.set_level(logging.INFO, logger="queuestore")
    async with await qs.default_registry().create("memory", cfg) as backend:
        await backend.enqueue(qs.Job(payload=1, max_retries=0))
        assert await backend.dequeue(qs.DequeueOptions(timeout=1.0)) is not None
        await anyio.sleep(0.25)
        assert await backend.length() == 0  # any operation sweeps first
    lines = events(caplog, "sweep")
    assert [r.name for r in lines] == ["queuestore.backends.memory"]
    assert lines[0].dead_lettered == 1  # type: ignore[attr-defined]

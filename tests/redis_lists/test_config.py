"""The redis-lists factory: options validated naming the field, and really applied."""

from __future__ import annotations

import pytest

from queuestore import BackendConfig, ConfigurationError, Job
from queuestore.backends.redis_lists import RedisListsFactory
from tests.servers import RedisServer

from .conftest import Maker

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("options", "extra", "field"),
    [
        ({"batch_size": 0}, {}, "options.batch_size"),
        ({"bury_limit": 0}, {}, "options.bury_limit"),
        ({"visibility_timeout": 0}, {}, "options.visibility_timeout"),
        ({"reclaim_batch": 0}, {}, "options.reclaim_batch"),
        ({"reclaim_batch": 10_000}, {}, "options.reclaim_batch"),
        ({"key_prefix": "a{b}"}, {}, "options.key_prefix"),
        ({"no_such_option": 1}, {}, "options.no_such_option"),
        ({"max_connections": 0}, {}, "options.max_connections"),
        ({}, {"url": "http://x"}, "url"),
        ({}, {"queue": "bad{name}"}, "queue"),
        ({}, {"cluster_mode": True, "database": 2}, "database"),
    ],
)
def test_invalid_config_names_the_field(
    options: dict[str, object], extra: dict[str, object], field: str
) -> None:
    fields: dict[str, object] = {"url": "redis://127.0.0.1:1/0", "queue": "q", **extra}
    config = BackendConfig(type="redis-lists", name="x", options=options, **fields)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError) as info:
        RedisListsFactory().validate(config)
    assert info.value.field == field


async def test_options_are_applied(lists: Maker, redis_server: RedisServer) -> None:
    backend = await lists(
        max_connections=3, key_prefix="custom-prefix:", encoding="json", visibility_timeout="2s"
    )
    job = Job(payload={"a": 1})
    await backend.enqueue(job)
    raw = redis_server.sync_client().hget(f"custom-prefix:{{{backend.queue}}}:jobs", job.id)
    assert raw is not None
    assert raw.startswith(b"{")
    got = await backend.dequeue()
    assert got is not None
    assert got.lease_deadline is not None
    assert got.started_at is not None
    assert 1.5 < got.lease_deadline - got.started_at < 2.5
    stats = await backend.stats()
    assert stats.connection_pool is not None
    assert stats.connection_pool.max == 3
    assert stats.connection_pool.active + stats.connection_pool.idle >= 1
    pool = backend.conn.client.connection_pool
    assert pool.max_connections == 3


async def test_health_and_capabilities_are_probed(lists: Maker, aof_redis_server: RedisServer) -> None:
    plain = await lists()
    assert plain.capabilities().persistence is False
    assert plain.capabilities().clustering is False
    durable = await Maker(aof_redis_server.url)()
    try:
        assert durable.capabilities().persistence is True
        health = await durable.health()
        assert health.status == "healthy"
        assert health.details["appendfsync"] == "always"
        aof_redis_server.sync_client().config_set("maxmemory-policy", "allkeys-lru")
        reopened = await Maker(aof_redis_server.url)()
        degraded = await reopened.health()
        assert degraded.status == "degraded"
        assert "noeviction" in degraded.message
        await reopened.aclose()
    finally:
        await durable.aclose()

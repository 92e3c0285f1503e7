"""End to end on a real redis-server: a manager built from YAML with a lists
queue and a streams queue, and health_check with one backend whose server went away."""

from __future__ import annotations

import uuid

import pytest

import queuestore as qs
from tests.servers import RedisServer, ServerFactory

pytestmark = pytest.mark.anyio


async def test_lists_manager_on_real_redis(
    redis_server: RedisServer, redis_server_factory: ServerFactory
) -> None:
    """What runs today (redis-lists has landed): two queues on one backend name, one on a
    server that then goes away."""
    doomed = redis_server_factory()
    tag = uuid.uuid4().hex[:8]
    text = f"""
backends:
  lists: {{type: redis-lists, url: "{redis_server.url}"}}
  doomed: {{type: redis-lists, url: "{doomed.url}"}}
queues:
  a-{tag}: {{backend: lists}}
  b-{tag}: {{backend: lists}}
  doomed-{tag}: {{backend: doomed}}
defaults: {{backend: lists, pool_size: 4, read_timeout: 500ms}}
"""
    config = qs.load_config(text).apply_defaults()
    config.validate()
    assert config.backends["lists"].options["max_connections"] == 4
    async with await qs.BackendManager.from_config(config, health_timeout=3.0) as manager:
        a, b = manager.get_backend(f"a-{tag}"), manager.get_backend(f"b-{tag}")
        assert a is not b
        job = qs.Job(payload={"n": 1})
        assert await a.enqueue(job)
        assert (await a.length(), await b.length()) == (1, 0)  # one server, separate queues
        got = await a.dequeue(qs.DequeueOptions(timeout=2.0))
        assert got is not None
        assert got.id == job.id
        await a.ack(got)
        health = await manager.health_check()
        assert {h.status for h in health.values()} == {qs.HealthLevel.HEALTHY}

        doomed.stop()
        health = await manager.health_check()
        assert health[f"doomed-{tag}"].status == qs.HealthLevel.UNHEALTHY
        assert health[f"a-{tag}"].status == qs.HealthLevel.HEALTHY
        assert health[f"b-{tag}"].status == qs.HealthLevel.HEALTHY
        stats = await manager.stats()
        assert isinstance(stats[f"doomed-{tag}"], qs.ConnectionFailedError)
        good = stats[f"a-{tag}"]
        assert isinstance(good, qs.BackendStats)
        assert good.total_acked == 1
    assert a.closed
    assert b.closed


async def test_manager_from_yaml_on_real_redis(
    redis_server: RedisServer, redis_server_factory: ServerFactory
) -> None:
    doomed = redis_server_factory()
    tag = uuid.uuid4().hex[:8]
    text = f"""
backends:
  lists:
    type: redis-lists
    url: ${{QS_URL}}
  streams:
    type: redis-streams
    url: ${{QS_URL}}
    options:
      consumer_group: workers-{tag}
  doomed:
    type: redis-lists
    url: {doomed.url}
queues:
  lists-{tag}: {{backend: lists}}
  streams-{tag}: {{backend: streams}}
  doomed-{tag}: {{backend: doomed}}
defaults:
  backend: redis-lists
  pool_size: 4
  read_timeout: 500ms
"""
    config = qs.load_config(text, env={"QS_URL": redis_server.url}).apply_defaults()
    with pytest.raises(qs.ConfigurationError):
        config.validate()  # defaults.backend: two backends of type redis-lists
    config.defaults.backend = "lists"
    config.validate()
    async with await qs.BackendManager.from_config(config, health_timeout=2.0) as manager:
        for queue in (f"lists-{tag}", f"streams-{tag}"):
            backend = manager.get_backend(queue)
            assert backend.queue == queue
            job = qs.Job(payload={"queue": queue})
            assert await backend.enqueue(job)
            got = await backend.dequeue(qs.DequeueOptions(timeout=2.0))
            assert got is not None
            assert got.id == job.id
            await backend.ack(got)
            assert await backend.length() == 0
        health = await manager.health_check()
        assert {h.status for h in health.values()} == {qs.HealthLevel.HEALTHY}

        doomed.stop()  # its port is closed now
        health = await manager.health_check()
        assert health[f"doomed-{tag}"].status == qs.HealthLevel.UNHEALTHY
        assert health[f"lists-{tag}"].status == qs.HealthLevel.HEALTHY
        assert health[f"streams-{tag}"].status == qs.HealthLevel.HEALTHY
        stats = await manager.stats()
        assert isinstance(stats[f"doomed-{tag}"], qs.BackendError)
        assert isinstance(stats[f"lists-{tag}"], qs.BackendStats)
        assert isinstance(stats[f"streams-{tag}"], qs.BackendStats)

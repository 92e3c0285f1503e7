"""The demo on a server it did not start leaves the keyspace as it found it: ``demo --url`` (both
Redis layouts) and ``python -m queuestore demo`` with ``$QUEUESTORE_URL``, on a throwaway server
that already holds keys of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

pytest.importorskip("click", reason="needs the 'cli' extra (pip install -e '.[cli]')")
pytest.importorskip("rich", reason="needs the 'cli' extra (pip install -e '.[cli]')")

from tests.servers import ServerFactory

from .helpers import child_env, invoke, subprocess_cli


def keyspace(client: redis.Redis) -> dict[bytes, bytes | None]:
    """Every key of the server with its serialized value (DUMP)."""
    return {key: client.dump(key) for key in client.scan_iter(count=1000)}


@pytest.fixture
def server_with_data(redis_server_factory: ServerFactory) -> tuple[str, redis.Redis]:
    server = redis_server_factory()
    client = redis.Redis(host="127.0.0.1", port=server.port)
    client.set("app:config", "keep me")
    client.hset("queue:{other}:jobs", mapping={"j1": "someone else's job"})
    client.xadd("events", {"k": "v"})
    return server.url, client


@pytest.mark.parametrize("backend_type", ["redis-lists", "redis-streams"])
def test_demo_on_url_leaves_the_keyspace_as_it_was(
    server_with_data: tuple[str, redis.Redis], backend_type: str
) -> None:
    url, client = server_with_data
    before = keyspace(client)
    assert len(before) == 3
    result = invoke(["demo", "--jobs", "5", "--workers", "2", "--url", url, "--type", backend_type])
    assert result.exit_code == 0, result.output
    assert "the poison job dead-lettered" in result.stdout
    assert keyspace(client) == before


def test_python_m_demo_with_queuestore_url_leaves_the_keyspace_as_it_was(
    server_with_data: tuple[str, redis.Redis], tmp_path: Path
) -> None:
    url, client = server_with_data
    before = keyspace(client)
    env = {**child_env(tmp_path / "state"), "QUEUESTORE_URL": url}
    done = subprocess_cli(["demo", "--jobs", "3"], env)
    assert done.returncode == 0, done.stderr
    assert "removed queue 'demo-" in done.stdout
    assert keyspace(client) == before

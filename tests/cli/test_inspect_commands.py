"""``config validate``, ``backends``, ``health``, ``stats``, ``peek`` and ``jobs`` against a real
redis-server, through click's runner: exit codes and output."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import queuestore as qs
from tests.servers import RedisServer

pytest.importorskip("click", reason="needs the 'cli' extra (pip install -e '.[cli]')")
pytest.importorskip("rich", reason="needs the 'cli' extra (pip install -e '.[cli]')")

from .helpers import as_json, backend_config, fill, invoke, run_on, unique, write_config


def test_config_validate_ok(config_file: Path, queue: str) -> None:
    result = invoke(["config", "validate", "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    assert "valid (2 backends, 1 queues)" in result.stdout
    assert queue in result.stdout
    doc = as_json(invoke(["config", "validate", "--config", str(config_file), "--json"]))
    assert doc["valid"] is True
    assert doc["queues"] == {queue: "src"}
    assert doc["backends"] == {"dst": "redis-streams", "src": "redis-lists"}


def test_config_validate_names_the_field_and_exits_2(tmp_path: Path, redis_server: RedisServer) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        f"backends:\n  main:\n    type: redis-lists\n    url: {redis_server.url}\n"
        "    options: {visibility_timeout: -3, bogus_option: 1}\nqueues:\n  q1: {backend: main}\n",
        encoding="utf-8",
    )
    result = invoke(["config", "validate", "--config", str(bad)])
    assert result.exit_code == 2
    assert "backends.main.options." in result.stderr
    assert "INVALID_CONFIGURATION" in result.stderr
    doc = as_json(invoke(["config", "validate", "--config", str(bad), "--json"]))
    assert doc["code"] == "INVALID_CONFIGURATION"
    assert doc["field"].startswith("backends.main.options.")

    missing_queue_backend = tmp_path / "q.yaml"
    missing_queue_backend.write_text(
        f"backends:\n  main: {{type: redis-lists, url: '{redis_server.url}'}}\n"
        "queues:\n  q1: {backend: nope}\n",
        encoding="utf-8",
    )
    result = invoke(["config", "validate", "--config", str(missing_queue_backend), "--json"])
    assert result.exit_code == 2
    assert as_json(result)["field"] == "queues.q1.backend"


def test_secrets_are_redacted_in_errors(tmp_path: Path) -> None:
    bad = tmp_path / "secret.yaml"
    bad.write_text(
        "backends:\n  main: {type: redis-lists, url: 'redis://user:hunter2@127.0.0.1:1/0', database: -1}\n"
        "queues:\n  q1: {backend: main}\n",
        encoding="utf-8",
    )
    result = invoke(["config", "validate", "--config", str(bad)])
    assert result.exit_code == 2
    assert "hunter2" not in result.output


def test_where_the_config_comes_from(
    tmp_path: Path, config_file: Path, queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = invoke(["config", "validate"])
    assert result.exit_code == 2
    assert "no configuration" in result.stderr
    monkeypatch.setenv("QUEUESTORE_CONFIG", str(config_file))
    assert invoke(["config", "validate"]).exit_code == 0
    monkeypatch.delenv("QUEUESTORE_CONFIG")
    shutil.copy(config_file, Path.cwd() / "storage.yaml")
    result = invoke(["config", "validate", "--json"])
    assert result.exit_code == 0
    assert as_json(result)["source"] == "storage.yaml"
    assert invoke(["config", "validate", "--config", str(tmp_path / "absent.yaml")]).exit_code == 2


def test_backends_lists_types_and_probed_capabilities(config_file: Path, queue: str) -> None:
    result = invoke(["backends", "--config", str(config_file)])
    assert result.exit_code == 0, result.output
    for name in ("memory", "redis-lists", "redis-streams", "keydb", "dragonfly", "atomic_ack"):
        assert name in result.stdout
    doc = as_json(invoke(["backends", "--config", str(config_file), "--json"]))
    assert {t["type"] for t in doc["types"]} >= {"memory", "redis-lists", "redis-streams"}
    (row,) = doc["configured"]
    assert (row["queue"], row["backend"], row["type"]) == (queue, "src", "redis-lists")
    assert row["capabilities"]["prioritization"] is True
    assert row["capabilities"]["consumer_groups"] is False
    # without any config: the types only
    types_only = as_json(invoke(["backends", "--json"]))
    assert types_only["configured"] == []


def test_backends_names_a_backend_that_cannot_connect(
    tmp_path: Path, redis_server: RedisServer, queue: str
) -> None:
    down_queue = unique("down")
    mixed = write_config(tmp_path / "mixed.yaml", redis_server.url, queue, extra_queues={down_queue: "down"})
    result = invoke(["backends", "--config", str(mixed), "--json"])
    assert result.exit_code == 1
    assert [c["queue"] for c in as_json(result)["configured"]] == [queue]
    assert f"queue {down_queue}: cannot connect: [CONNECTION_FAILED]" in result.stderr


def test_health_exit_codes(tmp_path: Path, redis_server: RedisServer, queue: str) -> None:
    ok = write_config(tmp_path / "ok.yaml", redis_server.url, queue)
    result = invoke(["health", "--config", str(ok)])
    assert result.exit_code == 0, result.output
    assert "healthy" in result.stdout
    doc = as_json(invoke(["health", "--config", str(ok), "--json"]))
    assert doc["healthy"] is True
    assert doc["queues"][queue]["status"] == "healthy"

    down_queue = unique("down")
    mixed = write_config(tmp_path / "mixed.yaml", redis_server.url, queue, extra_queues={down_queue: "down"})
    result = invoke(["health", "--config", str(mixed), "--json"])
    assert result.exit_code == 1
    doc = as_json(result)
    assert doc["healthy"] is False
    assert doc["queues"][queue]["status"] == "healthy"  # the reachable one is still checked
    assert doc["queues"][down_queue]["status"] == "unhealthy"
    assert "CONNECTION_FAILED" in doc["queues"][down_queue]["message"]
    # one queue only: the reachable one is healthy
    assert invoke(["health", queue, "--config", str(mixed)]).exit_code == 0


def test_stats_counts_each_state(config_file: Path, queue: str) -> None:
    src = backend_config(config_file, "src", queue)
    fill(src, 7)
    fill(src, 2, available_at=9_999_999_999.0)  # delayed

    async def lease_one(backend: qs.QueueBackend) -> None:
        assert await backend.dequeue(qs.DequeueOptions(timeout=1.0)) is not None

    run_on(src, lease_one)
    result = invoke(["stats", "--config", str(config_file), "--json"])
    assert result.exit_code == 0, result.output
    got = as_json(result)["queues"][queue]
    assert (got["queue_depth"], got["delayed"], got["in_flight"], got["dead"]) == (6, 2, 1, 0)
    table = invoke(["stats", queue, "--config", str(config_file)])
    assert table.exit_code == 0
    assert queue in table.stdout

    watched = invoke(
        [
            "stats",
            queue,
            "--config",
            str(config_file),
            "--json",
            "--watch",
            "--interval",
            "0.1",
            "--count",
            "3",
        ]
    )
    assert watched.exit_code == 0
    rounds = [line for line in watched.stdout.splitlines() if line.strip()]
    assert len(rounds) == 3


def test_stats_prometheus_text_parses(tmp_path: Path, redis_server: RedisServer, queue: str) -> None:
    parser = pytest.importorskip("prometheus_client.parser", reason="needs the 'prometheus' extra")
    down_queue = unique("down")
    mixed = write_config(tmp_path / "mixed.yaml", redis_server.url, queue, extra_queues={down_queue: "down"})
    fill(backend_config(mixed, "src", queue), 4)
    result = invoke(["stats", "--prometheus", "--config", str(mixed)])
    assert result.exit_code == 1  # one queue's backend cannot connect
    assert down_queue in result.stderr
    samples = {
        (s.name, s.labels.get("state", "")): s.value
        for family in parser.text_string_to_metric_families(result.stdout)
        for s in family.samples
        if s.labels.get("queue") == queue
    }
    assert samples[("queuestore_queue_jobs", "ready")] == 4
    assert samples[("queuestore_backend_up", "")] == 1
    ok = invoke(["stats", queue, "--prometheus", "--config", str(mixed)])
    assert ok.exit_code == 0


def test_stats_reports_a_backend_that_cannot_connect(
    tmp_path: Path, redis_server: RedisServer, queue: str
) -> None:
    down_queue = unique("down")
    mixed = write_config(tmp_path / "mixed.yaml", redis_server.url, queue, extra_queues={down_queue: "down"})
    result = invoke(["stats", "--config", str(mixed), "--json"])
    assert result.exit_code == 1
    doc = as_json(result)["queues"]
    assert doc[down_queue]["code"] == "CONNECTION_FAILED"
    assert doc[queue]["queue_depth"] == 0


def test_peek_shows_dequeue_order_without_leasing(config_file: Path, queue: str) -> None:
    src = backend_config(config_file, "src", queue)
    ids = fill(src, 12)  # priorities 0..9, 0, 1: the next is priority 9 (job 9)
    result = invoke(["peek", queue, "-n", "3", "--config", str(config_file), "--json"])
    assert result.exit_code == 0, result.output
    jobs = as_json(result)["jobs"]
    assert [j["priority"] for j in jobs] == [9, 8, 7]
    assert [j["id"] for j in jobs] == [ids[9], ids[8], ids[7]]
    table = invoke(["peek", queue, "--config", str(config_file)])
    assert ids[9] in table.stdout
    again = as_json(invoke(["stats", queue, "--config", str(config_file), "--json"]))["queues"][queue]
    assert (again["queue_depth"], again["in_flight"]) == (12, 0)  # peek leased nothing


def test_peek_unknown_queue_exits_2(config_file: Path) -> None:
    result = invoke(["peek", "no-such-queue", "--config", str(config_file)])
    assert result.exit_code == 2
    assert "queues.no-such-queue" in result.stderr


def test_jobs_by_state(config_file: Path, queue: str) -> None:
    src = backend_config(config_file, "src", queue)
    ready = fill(src, 5)
    delayed = fill(src, 1, available_at=9_999_999_999.0)
    poison = qs.Job(payload="poison", priority=9, max_retries=0)

    async def lease_and_kill(backend: qs.QueueBackend) -> str:
        assert await backend.enqueue(poison)
        first = await backend.dequeue(qs.DequeueOptions(timeout=1.0))
        assert first is not None
        assert first.id == poison.id  # the highest priority
        await backend.nack(first, requeue=False)
        kept = await backend.dequeue(qs.DequeueOptions(timeout=1.0))
        assert kept is not None
        return kept.id

    leased_id = run_on(src, lease_and_kill)
    base = ["--config", str(config_file), "--json"]

    def listed(state: str, *extra: str) -> list[str]:
        result = invoke(["jobs", queue, "--state", state, *extra, *base])
        assert result.exit_code == 0, result.output
        return [j["id"] for j in as_json(result)["jobs"]]

    assert listed("dead") == [poison.id]
    assert listed("delayed") == delayed
    assert listed("leased") == [leased_id]
    assert set(listed("ready")) == set(ready) - {leased_id}
    assert len(listed("ready", "--limit", "2")) == 2
    bad = invoke(["jobs", queue, "--state", "gone", *base])
    assert bad.exit_code == 2

"""``dlq redrive`` and ``dlq purge`` through click's runner against a real redis-server: exit codes,
output (tables and ``--json``), the confirmation prompt of purge, and what the store holds after."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("click", reason="needs the 'cli' extra (pip install -e '.[cli]')")
pytest.importorskip("rich", reason="needs the 'cli' extra (pip install -e '.[cli]')")

import queuestore as qs
from tests.servers import RedisServer

from .helpers import as_json, backend_config, invoke, run_on, unique, write_config


@pytest.fixture
def streams(tmp_path: Path, redis_server: RedisServer) -> tuple[Path, str, str]:
    """A config whose queues ``q`` and ``other`` are on the redis-streams backend ``dst``."""
    q, other = unique("dlq"), unique("other")
    path = write_config(
        tmp_path / "dlq.yaml", redis_server.url, unique("unused"), extra_queues={q: "dst", other: "dst"}
    )
    return path, q, other


def kill(cfg: qs.BackendConfig, count: int) -> list[str]:
    """Enqueue ``count`` jobs and dead-letter them; return their ids."""
    jobs = [qs.Job(payload={"n": i}, max_retries=0) for i in range(count)]

    async def work(backend: qs.QueueBackend) -> None:
        assert all(await backend.enqueue_many(jobs))
        for job in await backend.dequeue_many(qs.DequeueOptions(count=count)):
            await backend.nack(job, requeue=False, error="bad input")

    run_on(cfg, work)
    return [j.id for j in jobs]


def states(cfg: qs.BackendConfig, ids: list[str]) -> list[str | None]:
    async def work(backend: qs.QueueBackend) -> list[qs.Job | None]:
        return await backend.get_jobs(ids)  # type: ignore[attr-defined, no-any-return]

    return [None if j is None else j.state.value for j in run_on(cfg, work)]


def test_redrive_all_and_by_id(streams: tuple[Path, str, str]) -> None:
    path, q, _ = streams
    cfg = backend_config(path, "dst", q)
    ids = kill(cfg, 3)
    one = invoke(["dlq", "redrive", q, "--id", ids[0], "--id", "missing", "--config", str(path)])
    assert one.exit_code == 0, one.output
    assert one.stdout.strip() == f"redrove 1 dead job(s) of {q} (2 listed job(s) asked)"
    rest = invoke(["dlq", "redrive", q, "--all", "--config", str(path), "--json"])
    assert rest.exit_code == 0, rest.output
    assert as_json(rest) == {"queue": q, "to": q, "redriven": 2}
    assert states(cfg, ids) == ["ready"] * 3


def test_redrive_to_another_queue(streams: tuple[Path, str, str]) -> None:
    path, q, other = streams
    ids = kill(backend_config(path, "dst", q), 2)
    result = invoke(["dlq", "redrive", q, "--all", "--to", other, "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert f"redrove 2 dead job(s) of {q} into {other}" in result.stdout
    assert states(backend_config(path, "dst", other), ids) == ["ready", "ready"]
    assert states(backend_config(path, "dst", q), ids) == [None, None]


def test_redrive_to_a_queue_of_another_backend_is_refused(streams: tuple[Path, str, str]) -> None:
    path, q, _ = streams
    elsewhere = next(name for name, c in qs.load_config_from_file(path).queues.items() if c.backend == "src")
    ids = kill(backend_config(path, "dst", q), 1)
    result = invoke(["dlq", "redrive", q, "--all", "--to", elsewhere, "--config", str(path)])
    assert result.exit_code == 2
    assert f"--to {elsewhere}: that queue is served by backend 'src', {q} by 'dst'" in result.stderr
    assert states(backend_config(path, "dst", q), ids) == ["dead"]


def test_redrive_needs_exactly_one_of_id_and_all(streams: tuple[Path, str, str]) -> None:
    path, q, _ = streams
    neither = invoke(["dlq", "redrive", q, "--config", str(path)])
    assert neither.exit_code == 2
    assert "say which jobs: --id ID (repeatable) or --all" in neither.stderr
    both = invoke(["dlq", "redrive", q, "--all", "--id", "x", "--config", str(path), "--json"])
    assert both.exit_code == 2
    assert as_json(both)["code"] == "USAGE"
    unknown = invoke(["dlq", "redrive", "nope", "--all", "--config", str(path)])
    assert unknown.exit_code == 2
    assert "queues.nope" in unknown.stderr


def test_purge_asks_first_and_a_no_keeps_everything(streams: tuple[Path, str, str]) -> None:
    path, q, _ = streams
    cfg = backend_config(path, "dst", q)
    ids = kill(cfg, 3)
    declined = invoke(["dlq", "purge", q, "--all", "--config", str(path)], input="n\n")
    assert declined.exit_code == 1
    assert f"Purge all 3 dead job(s) of {q}? They cannot be recovered [y/N]" in declined.stderr
    assert "not confirmed: nothing was purged" in declined.stderr
    assert declined.stdout == ""
    assert states(cfg, ids) == ["dead"] * 3
    confirmed = invoke(["dlq", "purge", q, "--all", "--config", str(path)], input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert confirmed.stdout.strip() == f"purged 3 dead job(s) of {q} (every dead job asked)"
    assert states(cfg, ids) == [None] * 3


def test_purge_by_state_and_id_with_yes(streams: tuple[Path, str, str]) -> None:
    path, q, _ = streams
    cfg = backend_config(path, "dst", q)
    jobs = [qs.Job(payload=i) for i in range(3)]

    async def work(backend: qs.QueueBackend) -> None:
        assert all(await backend.enqueue_many(jobs))

    run_on(cfg, work)
    args = [
        "dlq",
        "purge",
        q,
        "--state",
        "ready",
        "--id",
        jobs[1].id,
        "--yes",
        "--config",
        str(path),
        "--json",
    ]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert result.stderr == "", "no prompt with --yes"
    assert as_json(result) == {"queue": q, "state": "ready", "purged": 1}
    assert states(cfg, [j.id for j in jobs]) == ["ready", None, "ready"]
    leased = invoke(["dlq", "purge", q, "--state", "leased", "--all", "--yes", "--config", str(path)])
    assert leased.exit_code == 2
    assert "Invalid value for '--state'" in leased.stderr

"""Helpers of the CLI tests: YAML configs on the session server, filling and reading queues."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

import queuestore as qs

if TYPE_CHECKING:
    from click.testing import Result

ROOT = Path(__file__).resolve().parents[2]
ALL_STATES = (qs.JobState.READY, qs.JobState.DELAYED, qs.JobState.IN_FLIGHT, qs.JobState.DEAD)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def write_config(path: Path, url: str, queue: str, *, extra_queues: dict[str, str] | None = None) -> Path:
    """A config with ``src`` (redis-lists) and ``dst`` (redis-streams) on ``url`` under fresh key
    prefixes, ``queue`` on ``src``; ``extra_queues`` maps more queues to ``src``/``dst``/``down``
    (``down`` is a redis-lists backend on a port where nothing listens)."""
    queues = {queue: "src", **(extra_queues or {})}
    lines = [
        "backends:",
        "  src:",
        "    type: redis-lists",
        f"    url: {url}",
        f"    options: {{key_prefix: '{unique('cli-src')}:'}}",
        "  dst:",
        "    type: redis-streams",
        f"    url: {url}",
        f"    options: {{key_prefix: '{unique('cli-dst')}:'}}",
    ]
    if "down" in queues.values():
        lines += ["  down:", "    type: redis-lists", f"    url: redis://127.0.0.1:{qs_free_port()}/0"]
    lines.append("queues:")
    lines += [f"  {q}: {{backend: {b}}}" for q, b in queues.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def qs_free_port() -> int:
    from queuestore.testing import free_port

    return free_port()


def backend_config(config_file: Path, name: str, queue: str) -> qs.BackendConfig:
    cfg = qs.load_config_from_file(config_file).apply_defaults()
    backend = cfg.get_backend_config(name)
    backend.queue = queue
    return backend


async def _with_backend(cfg: qs.BackendConfig, work: Any) -> Any:
    async with await qs.default_registry().create(cfg.type, cfg) as backend:
        return await work(backend)


def run_on(cfg: qs.BackendConfig, work: Any) -> Any:
    """Run ``await work(backend)`` on a fresh backend made from ``cfg``."""
    return anyio.run(_with_backend, cfg, work)


def fill(cfg: qs.BackendConfig, count: int, **job: Any) -> list[str]:
    """Enqueue ``count`` jobs (priorities cycling 0..9); return their ids in enqueue order."""
    jobs = [qs.Job(payload={"n": i}, priority=i % 10, **job) for i in range(count)]

    async def work(backend: qs.QueueBackend) -> None:
        for i in range(0, len(jobs), 500):
            assert all(await backend.enqueue_many(jobs[i : i + 500]))

    run_on(cfg, work)
    return [j.id for j in jobs]


def stored_ids(cfg: qs.BackendConfig) -> list[str]:
    """Every stored job id of the backend's queue, in every state (duplicates kept)."""

    async def work(backend: qs.QueueBackend) -> list[str]:
        return [j.id async for j in backend.iter(qs.IterOptions(states=ALL_STATES, count=1000))]

    result: list[str] = run_on(cfg, work)
    return result


def invoke(args: list[str], **kwargs: Any) -> Result:
    """Run the CLI in this process through click's runner (not a terminal)."""
    from click.testing import CliRunner

    from queuestore.cli._app import cli

    return CliRunner().invoke(cli, args, catch_exceptions=False, **kwargs)


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def subprocess_cli(args: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``python -m queuestore ARGS`` as another OS process."""
    return subprocess.run(
        [sys.executable, "-m", "queuestore", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def child_env(state_dir: Path) -> dict[str, str]:
    env = dict(os.environ, QUEUESTORE_STATE_DIR=str(state_dir), PYTHONPATH=str(ROOT))
    env.pop(qs_config_env(), None)
    return env


def qs_config_env() -> str:
    from queuestore.cli._target import CONFIG_ENV

    return CONFIG_ENV

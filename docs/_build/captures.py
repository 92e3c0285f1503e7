"""Remake the terminal captures of docs/captures/ (shown in docs/cli.md).

Usage (from the repository root, with the ``cli`` extra and tmux installed)::

    python docs/_build/captures.py

It starts a throwaway redis-server (queuestore.testing: temp dir, free port), writes a config
with a ``redis-lists`` source and a ``redis-streams`` target on it, fills a queue with 20,000
jobs, and runs in a tmux pane of fixed size:

* ``queuestore stats --watch`` while a producer and a worker run on ``reports``, captured after
  three rounds (``docs/captures/stats-watch.txt``), then stopped with Ctrl-C;
* ``queuestore migrate run`` of ``emails`` with a small ``--batch-size``, captured mid-way
  (``docs/captures/migrate-run.txt``).

The captures are ``tmux capture-pane -p`` text: what the terminal showed, without colours.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

import queuestore as qs
from queuestore.testing import RedisServer

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "captures"
SESSION = "qs-captures"
JOBS = 20_000
WIDTH, HEIGHT = 110, 30


def config(url: str) -> str:
    return f"""backends:
  main:
    type: redis-lists
    url: {url}
    options: {{key_prefix: "capture:"}}
  streams:
    type: redis-streams
    url: {url}
    options: {{key_prefix: "capture-st:"}}
queues:
  emails: {{backend: main}}
  reports: {{backend: streams}}
"""


async def fill(url: str, queue: str, backend_type: str, prefix: str, count: int) -> None:
    cfg = qs.BackendConfig(
        type=backend_type, name="fill", url=url, queue=queue, options={"key_prefix": prefix}
    )
    async with await qs.default_registry().create(backend_type, cfg) as backend:
        for start in range(0, count, 1000):
            jobs = [
                qs.Job(type="email", payload={"n": i, "to": f"user{i}@example.com"}, priority=i % 10)
                for i in range(start, min(count, start + 1000))
            ]
            await backend.enqueue_many(jobs)


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def run_in_pane(command: str, env: dict[str, str]) -> None:
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    tmux("kill-session", "-t", SESSION) if has_session() else None
    tmux("new-session", "-d", "-s", SESSION, "-x", str(WIDTH), "-y", str(HEIGHT))
    tmux("send-keys", "-t", SESSION, f"clear; {exports} {command}", "Enter")


def has_session() -> bool:
    return subprocess.run(["tmux", "has-session", "-t", SESSION], capture_output=True).returncode == 0


def capture(name: str, shown: str) -> None:
    text = tmux("capture-pane", "-p", "-t", SESSION)
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    (OUT / name).write_text(f"$ {shown}\n" + "\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {OUT / name}")


def wait_for(predicate: str, timeout: float, times: int = 1) -> None:
    """Poll the pane until ``predicate`` shows in it ``times`` times."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if tmux("capture-pane", "-p", "-t", SESSION).count(predicate) >= times:
            return
        time.sleep(0.05)
    raise SystemExit(f"{predicate!r} did not show within {timeout}s")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp, RedisServer() as server:
        cfg = Path(tmp) / "storage.yaml"
        cfg.write_text(config(server.url), encoding="utf-8")
        env = {
            "PYTHONPATH": str(ROOT),
            "QUEUESTORE_STATE_DIR": str(Path(tmp) / "state"),
            "QUEUESTORE_CONFIG": str(cfg),
            "PS1": "$ ",
        }
        anyio.run(fill, server.url, "emails", "redis-lists", "capture:", JOBS)
        anyio.run(fill, server.url, "reports", "redis-streams", "capture-st:", 2000)

        load = subprocess.Popen(
            [python, str(Path(__file__).with_name("captures_load.py")), server.url],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            run_in_pane(f"{python} -m queuestore stats --watch --interval 1", env)
            wait_for("stats at", 30, times=3)
            capture("stats-watch.txt", "queuestore stats --watch --interval 1")
            tmux("send-keys", "-t", SESSION, "C-c")
        finally:
            load.terminate()
            load.wait(10)
            tmux("kill-session", "-t", SESSION)

        shown = "queuestore migrate run emails --to streams --batch-size 20"
        run_in_pane(f"{python} -m queuestore migrate run emails --to streams --batch-size 20", env)
        wait_for("copying", 60)
        time.sleep(2.0)
        capture("migrate-run.txt", shown)
        wait_for("verified", 300)
        tmux("kill-session", "-t", SESSION)
    return 0


if __name__ == "__main__":
    sys.exit(main())

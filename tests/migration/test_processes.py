"""Live migration across OS processes, each with its own BackendManager from the same YAML:
one producing, one consuming, one migrating lists -> streams (killed -9 at a random point of
the copy and resumed by another process), one polling the status from the store. Checked job
by job at the end: nothing lost, nothing duplicated, nothing stranded on the source; and the
status the poller read from the store never went back."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import anyio
import pytest

from queuestore import BackendConfig, BackendManager, DequeueOptions, Job, load_config_from_file
from queuestore.migration import MigrationManager

from .helpers import redis_backend, stored_ids, two_backend_config, unique, write_yaml

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

HELPER = Path(__file__).with_name("proc_helper.py")
#: jobs on the source when the migration starts (the producer adds more); QS_LIVE_JOBS overrides
JOBS = int(os.environ.get("QS_LIVE_JOBS", "50000"))
PRODUCED = 4_000


def _spawn(role: str, env: dict[str, str], **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HELPER), role],
        env={**env, **extra},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split() if path.exists() else []


async def _fill(config_file: Path, queue: str) -> set[str]:
    """JOBS jobs: ready with priorities, delayed (due in 3 s and in 10 min), dead, and
    leased by this process and never acked (their leases run out during the migration)."""
    cfg = load_config_from_file(config_file).apply_defaults()
    async with await BackendManager.from_config(cfg) as manager:
        b = manager.get_backend(queue)
        ready = [Job(payload={"i": i}, priority=i % 10, max_retries=5) for i in range(JOBS - 2_000)]
        soon = [Job(payload={"soon": i}).delayed(3.0) for i in range(600)]
        later = [Job(payload={"later": i}).delayed(600.0) for i in range(400)]
        dead = [Job(payload={"dead": i}, max_retries=0) for i in range(500)]
        leased = [Job(payload={"leased": i}, priority=9) for i in range(500)]
        assert all(await b.enqueue_many(dead))
        for job in await b.dequeue_many(DequeueOptions(count=500)):
            await b.nack(job, requeue=False, error="poison")
        assert all(await b.enqueue_many(leased))
        got = await b.dequeue_many(DequeueOptions(count=500))  # never acked: the leases run out
        assert {j.id for j in got} == {j.id for j in leased}
        for part in (ready, soon, later):
            for i in range(0, len(part), 1000):
                assert all(await b.enqueue_many(part[i : i + 1000]))
        return {j.id for j in ready + soon + later + dead + leased}


@pytest.mark.timeout(300)
async def test_three_processes_and_a_killed_migration_lose_and_duplicate_nothing(
    redis_server: object, tmp_path: Path
) -> None:
    url: str = redis_server.url  # type: ignore[attr-defined]
    queue = unique("live")
    src = redis_backend("redis-lists", url, unique("qs-live-src") + ":", visibility_timeout=4.0)
    dst = redis_backend("redis-streams", url, unique("qs-live-dst") + ":", visibility_timeout=4.0)
    config_file = write_yaml(tmp_path / "storage.yaml", two_backend_config(queue, src, dst))
    before = await _fill(config_file, queue)

    stop = tmp_path / "stop"
    env = {**os.environ, "QS_CONFIG": str(config_file), "QS_QUEUE": queue, "QS_STOP": str(stop)}
    produced, acked, polled = tmp_path / "produced", tmp_path / "acked", tmp_path / "polled"
    poller = _spawn("poll", env, QS_OUT=str(polled))
    consumer = _spawn("consume", env, QS_OUT=str(acked), QS_PAUSE="0.02")
    producer = _spawn("produce", env, QS_OUT=str(produced), QS_COUNT=str(PRODUCED))
    first = _spawn("migrate", env, QS_BATCH="200", QS_PAUSE="0.03")
    started = time.monotonic()

    kill_at = random.randint(1_000, 8_000)  # jobs copied when the first migrating process dies
    cfg = load_config_from_file(config_file).apply_defaults()
    async with await BackendManager.from_config(cfg) as watcher, MigrationManager(watcher) as mm:
        with anyio.fail_after(120):
            while True:
                assert first.poll() is None, first.communicate()
                try:
                    st = await mm.read_migration_status(queue)
                except KeyError:
                    st = None
                if st is not None and st.phase == "copying" and st.migrated_jobs >= kill_at:
                    break
                await anyio.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    assert first.returncode == -9

    second = _spawn("migrate", env, QS_BATCH="500")  # another process takes over and resumes
    out, err = second.communicate(timeout=180)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["phase"] == "completed", (result, err[-3000:])

    assert producer.wait(timeout=120) == 0, producer.communicate()
    stop.touch()
    assert consumer.wait(timeout=120) == 0, consumer.communicate()
    assert poller.wait(timeout=60) == 0, poller.communicate()
    elapsed = time.monotonic() - started

    expected = before | set(_lines(produced))
    acks = Counter(_lines(acked))
    async with await BackendManager.from_config(cfg) as check:
        on_source = await stored_ids(await check.open_backend(_with_queue(cfg.backends["src"], queue)))
        on_target = await stored_ids(await check.open_backend(_with_queue(cfg.backends["dst"], queue)))
    at_rest = on_source + on_target
    lost = expected - set(acks) - set(at_rest)
    duplicated = {i for i, n in (acks + at_rest).items() if n > 1}
    unexpected = (set(acks) | set(at_rest)) - expected
    stranded = set(on_source)
    report = (
        f"{len(expected)} jobs ({len(before)} before, {len(expected) - len(before)} produced), "
        f"{sum(acks.values())} acked, {len(on_target)} at rest on the target, "
        f"killed at {kill_at}, {elapsed:.1f}s"
    )
    print(report)
    assert (len(lost), len(duplicated), len(stranded), len(unexpected)) == (0, 0, 0, 0), report
    assert len(on_target) == 400 + 500  # the far-delayed and the dead ones wait on the target

    rows = [json.loads(line) for line in polled.read_text(encoding="utf-8").splitlines()]
    mine = [r for r in rows if r["mid"] == result.get("mid", rows[-1]["mid"])]
    progress = [r["progress"] for r in mine]
    assert len(progress) > 10
    assert progress == sorted(progress), progress
    assert mine[-1]["phase"] == "completed"
    assert len({r["owner"] for r in mine if r["owner"]}) == 2  # the killed owner, then the resumer


def _with_queue(cfg: BackendConfig, queue: str) -> BackendConfig:
    cfg.queue = queue
    return cfg

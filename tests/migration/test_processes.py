"""Live migration across OS processes, each with its own BackendManager from the same YAML:
one producing, one consuming, one polling the status from the store, and migrating ones:
lists -> streams killed -9 at a random point of the copy and resumed by another process; and,
in a second test, lists -> streams cancelled at a random point and resumed by another
process, then streams -> lists cancelled and rolled back by another process, then streams ->
lists again to the end. Checked job by job at the end: nothing lost, nothing duplicated,
nothing stranded, nothing unexpected; and the progress of each run the poller read from the
store never went back."""

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
import msgspec
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


async def _fill(config_file: Path, queue: str, count: int = JOBS) -> set[str]:
    """``count`` jobs: ready with priorities, delayed (due in 3 s and in 10 min), dead, and
    leased by this process and never acked (their leases run out during the migration)."""
    cfg = load_config_from_file(config_file).apply_defaults()
    async with await BackendManager.from_config(cfg) as manager:
        b = manager.get_backend(queue)
        ready = [Job(payload={"i": i}, priority=i % 10, max_retries=5) for i in range(count - 2_000)]
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


#: jobs on the source when the first leg of the there-and-back test starts; QS_LEGS_JOBS overrides
LEGS_JOBS = int(os.environ.get("QS_LEGS_JOBS", "50000"))


@pytest.mark.timeout(300)
async def test_there_cancelled_and_resumed_back_rolled_back_and_back_again_lose_nothing(
    redis_server: object, tmp_path: Path
) -> None:
    url: str = redis_server.url  # type: ignore[attr-defined]
    queue = unique("legs")
    src = redis_backend("redis-lists", url, unique("qs-legs-src") + ":", visibility_timeout=4.0)
    dst = redis_backend("redis-streams", url, unique("qs-legs-dst") + ":", visibility_timeout=4.0)
    config_file = write_yaml(tmp_path / "storage.yaml", two_backend_config(queue, src, dst))
    # the migrators of the way back start from a config that names the queue's new home
    back = two_backend_config(queue, msgspec.structs.replace(dst), msgspec.structs.replace(src))
    back_file = write_yaml(tmp_path / "back.yaml", back)
    before = await _fill(config_file, queue, LEGS_JOBS)

    stop = tmp_path / "stop"
    env = {**os.environ, "QS_CONFIG": str(config_file), "QS_QUEUE": queue, "QS_STOP": str(stop)}
    produced, acked, polled = tmp_path / "produced", tmp_path / "acked", tmp_path / "polled"
    poller = _spawn("poll", env, QS_OUT=str(polled), QS_POLL_STORES="1")
    consumer = _spawn("consume", env, QS_OUT=str(acked), QS_PAUSE="0.05")
    producer = _spawn("produce", env, QS_OUT=str(produced), QS_COUNT="0", QS_UNTIL_STOP="1", QS_PAUSE="0.1")
    started = time.monotonic()

    def run(role: str, config: Path, **extra: str) -> dict[str, object]:
        proc = _spawn(role, {**env, "QS_CONFIG": str(config)}, **extra)
        out, err = proc.communicate(timeout=180)
        lines = out.strip().splitlines()
        assert proc.returncode == 0, (role, extra, out, err[-3000:])
        assert lines, (role, extra, err[-3000:])
        reply: dict[str, object] = json.loads(lines[-1])
        return reply

    cancel_there = random.randint(500, 5_000)
    cancel_back = random.randint(200, 3_000)
    slow = {"QS_BATCH": "200", "QS_PAUSE": "0.03"}
    legs = [
        run("migrate", config_file, **slow, QS_CANCEL_AT=str(cancel_there)),  # lists -> streams
        run("migrate", config_file, QS_BATCH="500"),  # resumed by another process
        run("migrate", back_file, **slow, QS_CANCEL_AT=str(cancel_back)),  # streams -> lists
        run("rollback", back_file),  # by another process
        run("migrate", back_file, QS_BATCH="500"),  # streams -> lists again, to the end
    ]
    phases = [leg.get("phase") for leg in legs]
    assert phases == ["cancelled", "completed", "cancelled", "rolled_back", "completed"], legs
    there, home = legs[1]["mid"], legs[4]["mid"]
    assert legs[0]["mid"] == there
    assert legs[2]["mid"] == legs[3]["mid"] == home != there

    await anyio.sleep(1.0)  # the producer writes on while the followers settle
    stop.touch()
    assert producer.wait(timeout=60) == 0, producer.communicate()
    assert consumer.wait(timeout=120) == 0, consumer.communicate()
    assert poller.wait(timeout=60) == 0, poller.communicate()
    elapsed = time.monotonic() - started

    expected = before | set(_lines(produced))
    acks = Counter(_lines(acked))
    cfg = load_config_from_file(config_file).apply_defaults()
    async with await BackendManager.from_config(cfg) as check:  # home: the lists store again
        at_home = await stored_ids(await check.open_backend(_with_queue(cfg.backends["src"], queue)))
        left = await stored_ids(await check.open_backend(_with_queue(cfg.backends["dst"], queue)))
    at_rest = at_home + left
    lost = expected - set(acks) - set(at_rest)
    duplicated = {i for i, n in (acks + at_rest).items() if n > 1}
    unexpected = (set(acks) | set(at_rest)) - expected
    stranded = set(left)
    report = (
        f"{len(expected)} jobs ({len(before)} before, {len(expected) - len(before)} produced), "
        f"{sum(acks.values())} acked, {len(at_home)} at rest at home; cancelled there at "
        f"{cancel_there} and back at {cancel_back}; lost {len(lost)}, duplicated {len(duplicated)}, "
        f"stranded {len(stranded)}, unexpected {len(unexpected)}; {elapsed:.1f}s"
    )
    print(report)
    assert (len(lost), len(duplicated), len(stranded), len(unexpected)) == (0, 0, 0, 0), report
    assert len(at_home) == 400 + 500  # the far-delayed and the dead ones wait at home

    rows = [json.loads(line) for line in polled.read_text(encoding="utf-8").splitlines()]
    for mid, ends in ((there, ["completed"]), (home, ["cancelled", "rolled_back", "completed"])):
        for source in ("", "src", "dst"):  # through the poller's routing, and each store's record
            runs = _runs([r for r in rows if r["mid"] == mid and r.get("store", "") == source])
            for one in runs:
                progress = [r["progress"] for r in one]
                assert progress == sorted(progress), (mid, source, progress)
            if source == ("src" if mid == there else "dst"):  # the store of the run's source
                assert [r[-1]["phase"] for r in runs] == ends, (mid, [r[-1] for r in runs])
                assert len(runs[0]) >= 3  # read while it ran (a cancel may come within a second)
                assert "cancelled" in {r["phase"] for r in runs[0]}


def _runs(rows: list[dict[str, object]]) -> list[list[dict[str, object]]]:
    """Rows of one migration id cut into runs: a rollback ends a run and a new one starts after it."""
    runs: list[list[dict[str, object]]] = [[]]
    for row in rows:
        rolled = row["phase"] == "rolled_back"
        if runs[-1] and (runs[-1][-1]["phase"] == "rolled_back") != rolled:
            runs.append([])
        runs[-1].append(row)
    return [r for r in runs if r]


def _with_queue(cfg: BackendConfig, queue: str) -> BackendConfig:
    cfg.queue = queue
    return cfg

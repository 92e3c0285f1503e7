"""The harness's script ceiling, memory yardstick, drained-queue keys and per-operation scale
check: that each runs the work it claims and reports it in the right shape. No figure is
asserted beyond what the work itself fixes (counts of commands, jobs and keys)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import redis.asyncio as aredis

from benchmarks import report
from benchmarks.ceiling import RawClient, run_ceiling
from benchmarks.cli import main, parse_args
from benchmarks.scale import SCALE_OPS, ScaleResult, queue_keys, raw_memory, scale
from benchmarks.scenarios import Bench, MemoryResult, fill, open_backend
from benchmarks.workload import Counter, make_jobs

SMALL = ["--jobs", "200", "--no-progress", "--memory-jobs", "400", "--scale-sizes", "100,400"]


def _cmdstats(client: Any) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in client.info("commandstats").items()}


def _calls_of(redis_server: Any, name: str, n: int) -> dict[str, int]:
    """Commands the server ran for ceiling ``name`` over ``n`` jobs (pipelines of 100)."""
    sync = redis_server.sync_client()

    async def go() -> None:
        raw = RawClient(redis_server.url, None)
        await raw.load()
        server = aredis.Redis.from_url(redis_server.url)
        try:
            await run_ceiling(raw, name, n, concurrency=4, batch=100, ctr=Counter(n), server=server)
        finally:
            await raw.aclose()
            await server.aclose()

    sync.config_resetstat()
    asyncio.run(go())
    return _cmdstats(sync)


def test_pipelined_evalsha_ceiling_is_one_script_and_one_lpush_per_job(redis_server: Any) -> None:
    script = _calls_of(redis_server, "evalsha_pipeline_100", 250)
    plain = _calls_of(redis_server, "lpush_pipeline_100", 250)
    assert script["evalsha"] == 250
    assert script["lpush"] == 250  # the same writes as the plain pipeline, each inside a script
    assert plain["lpush"] == 250
    assert "evalsha" not in plain


def test_raw_memory_counts_the_payloads_and_deletes_its_keys(redis_server: Any) -> None:
    async def go() -> float:
        server = aredis.Redis.from_url(redis_server.url)
        try:
            return await raw_memory(Bench(url=redis_server.url, server=server, jobs=0), 2000)
        finally:
            await server.aclose()

    per_job = asyncio.run(go())
    assert per_job > 200  # a JSON payload of more than 200 bytes, a 32-byte id twice
    assert not list(redis_server.sync_client().scan_iter(match="qsbench-*raw:*", count=1000))


def test_queue_keys_show_a_queue_before_and_after_drain(redis_server: Any) -> None:
    async def go() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        server = aredis.Redis.from_url(redis_server.url)
        bench = Bench(url=redis_server.url, server=server, jobs=0)
        try:
            async with open_backend(bench, "redis-lists", "keys") as backend:
                await fill(backend, make_jobs(backend.queue, 300), 4)
                full = await queue_keys(bench, backend.queue)
            return full, await queue_keys(bench, backend.queue)
        finally:
            await server.aclose()

    full, drained = asyncio.run(go())
    assert full
    assert all({"key", "type", "length", "bytes"} <= e.keys() for e in full)
    assert sum(e["length"] for e in full if ":ready" in e["key"]) == 300
    assert max(e["length"] for e in full) == 300  # the job hash and the ready list hold every job
    assert sum(e["bytes"] for e in drained) < sum(e["bytes"] for e in full)
    assert max(e["length"] for e in drained) < 300  # bookkeeping only, nothing per job


def test_scale_times_every_operation_at_every_size(redis_server: Any) -> None:
    async def go() -> ScaleResult:
        server = aredis.Redis.from_url(redis_server.url)
        try:
            return await scale(Bench(url=redis_server.url, server=server, jobs=0), "redis-streams",
                               [40, 200], Counter(240), samples=5)  # fmt: skip
        finally:
            await server.aclose()

    res = asyncio.run(go())
    assert res.sizes == [40, 200]
    assert res.samples == {op: [5, 5] for op in SCALE_OPS}
    assert set(res.us_per_op) == set(SCALE_OPS)
    assert all(len(xs) == 2 and min(xs) > 0 for xs in res.us_per_op.values())
    assert len(res.load_jobs_per_s) == 2
    entry = report.scale_entry("redis-streams", res)
    assert set(entry["ratio"]) == set(SCALE_OPS)
    assert isinstance(entry["pass"], bool)


def test_run_reports_memory_against_raw_and_scale(redis_server: Any, tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    rc = main([*SMALL, "--url", redis_server.url, "--backends", "redis-lists",
               "--scenarios", "enqueue_many,memory,scale", "--out", str(out)])  # fmt: skip
    entries = report.json.loads(out.read_text())
    assert rc == 0, [e for e in entries if e.get("kind") == "error"]
    rows = {e["scenario"]: e for e in entries if e.get("kind") == "throughput"}
    vs = rows["enqueue_many (vs evalsha_pipeline_100)"]
    assert vs["ceiling"] == "evalsha_pipeline_100"
    assert vs["target"] == 1.2
    assert vs["jobs_per_s"] == rows["enqueue_many"]["jobs_per_s"]  # one measurement, two ceilings
    (mem,) = [e for e in entries if e.get("kind") == "memory"]
    assert mem["raw_bytes_per_queued_job"] > 0
    assert mem["ratio_to_raw"] > 0
    assert isinstance(mem["raw_pass"], bool)
    assert mem["keys_after_drain"] is not None
    (sc,) = [e for e in entries if e.get("kind") == "scale"]
    assert sc["sizes"] == [100, 400]
    assert set(sc["us_per_op"]) == set(SCALE_OPS)
    md = report.markdown(entries)
    assert "### Memory against a raw hash + list" in md
    assert "### Cost per operation at growing queue depth" in md


def test_memory_backend_scale_is_capped_and_has_no_raw_memory(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    assert main([*SMALL, "--backends", "memory", "--scenarios", "memory,scale", "--out", str(out)]) == 0
    entries = report.json.loads(out.read_text())
    (mem,) = [e for e in entries if e.get("kind") == "memory"]
    assert mem["raw_bytes_per_queued_job"] is None
    assert mem["keys_after_drain"] is None
    (sc,) = [e for e in entries if e.get("kind") == "scale"]
    assert sc["sizes"] == [100, 400]


def test_scale_defaults_and_memory_entry_shape() -> None:
    assert parse_args(["--jobs", "50000"]).scale_sizes == [10_000, 1_000_000]
    res = MemoryResult(1000, 600.0, 0.0, "redis INFO used_memory - client buffers")
    e = report.memory_entry("redis-lists", res, 300.0, [])
    assert e["ratio_to_raw"] == 2.0
    assert e["raw_pass"] is False
    assert report.memory_entry("redis-lists", res, 500.0, [])["raw_pass"] is True


def test_an_operation_without_a_figure_fails_the_scale_check() -> None:
    res = ScaleResult([10, 1000], {op: [10.0, 12.0] for op in SCALE_OPS})
    res.us_per_op["peek_last"] = [10.0, None]
    res.errors.append("peek_last at 1,000: OperationTimeoutError: ...")
    assert res.ratio("peek_last") is None
    entry = report.scale_entry("b", res)
    assert entry["pass"] is False
    assert entry["ratio"]["dequeue_ack"] == 1.2
    assert "no figure for peek_last at 1,000" in report.markdown([entry])

"""Paired blocks: a backend and its ceiling measured in short alternating blocks, ``python -m
benchmarks.paired``.

On a machine whose speed moves by half within seconds, a ratio of two figures measured minutes
apart (``python -m benchmarks``, even with ``--rounds``) can be off by that much either way.
Here the same throughput scenario runs on the backend and on its raw ceiling (the harness's,
:data:`benchmarks.report.CEILING_OF`; for ``enqueue_many`` the one of its 1.2 target, one
script per job pipelined) in ``--pairs`` pairs of ``--jobs`` jobs each, back to
back, the order swapped every pair (raw first, then the backend first, ...), so that each
pair's two blocks see the same machine. Reported per backend and scenario: the median of the
pairs' ratios with its quartiles, and the pooled ratio (all the backend's jobs over all its
time, against the same for the ceiling), held to :data:`PAIRED_TARGETS`. A dequeue block fills
its queue untimed first (as the harness does); the backend's queue is drained untimed after each
block, so every block starts from the same state.

    python -m benchmarks.paired --backends redis-lists,redis-streams \\
        --scenarios enqueue_1,dequeue_many --pairs 15 --jobs 2000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import redis.asyncio as aredis

from benchmarks.ceiling import RawClient, run_ceiling
from benchmarks.cli import delete_run_keys
from benchmarks.report import CEILING_OF, SCRIPT_CEILING_OF, STRETCH_TARGET, TARGETS
from benchmarks.scenarios import THROUGHPUT_SCENARIOS, Bench, backend_family, drain, open_backend
from benchmarks.server import bench_server
from benchmarks.throughput import run_throughput
from benchmarks.workload import Counter, loadavg

__all__ = ["PAIRED_TARGETS", "main", "pair_summary", "paired_ceiling"]

#: scenarios with a single raw ceiling to pair with (end_to_end's is a combination of two)
PAIRED_SCENARIOS = tuple(s for s in THROUGHPUT_SCENARIOS if s != "end_to_end")
#: the ratio each scenario is held to here: the harness's target, or where it has a stricter
#: one, that (32 consumers: the stretch; a batch enqueue: against one script per job, pipelined)
PAIRED_TARGETS = {
    **TARGETS,
    "dequeue_ack_32": STRETCH_TARGET,
    "enqueue_many": SCRIPT_CEILING_OF["enqueue_many"][1],
}
#: the backend types that have a raw ceiling (the memory backend has none)
REDIS_TYPES = ("redis-lists", "redis-streams", "keydb", "dragonfly")


def paired_ceiling(family: str, scenario: str) -> str:
    """The raw ceiling a scenario is paired with: for a batch enqueue one script per job,
    pipelined (its target's ceiling), else the harness's ceiling for the backend's family."""
    if scenario in SCRIPT_CEILING_OF:
        return SCRIPT_CEILING_OF[scenario][0]
    return CEILING_OF[(family, scenario)]


def pair_summary(ours: list[float], raw: list[float], jobs: int) -> dict[str, Any]:
    """The figures of one backend and scenario from its pairs' jobs/s (``ours[i]`` beside
    ``raw[i]``, ``jobs`` each): the median ratio, its quartiles and the pooled ratio."""
    ratios = [o / r for o, r in zip(ours, raw, strict=True)]
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    pooled = (jobs * len(ours) / sum(jobs / o for o in ours)) / (jobs * len(raw) / sum(jobs / r for r in raw))
    return {
        "pairs": len(ratios),
        "median_ratio": statistics.median(ratios),
        "q1": q1,
        "q3": q3,
        "pooled_ratio": pooled,
        "ratios": ratios,
        "jobs_per_s": ours,
        "ceiling_jobs_per_s": raw,
    }


async def _pairs(bench: Bench, raw: RawClient, btype: str, scenario: str, pairs: int) -> dict[str, Any]:
    """``pairs`` alternating blocks of ``btype`` and its ceiling in ``scenario``."""
    ours: list[float] = []
    theirs: list[float] = []
    async with open_backend(bench, btype, scenario) as backend:
        ceiling = paired_ceiling(backend_family(btype, backend), scenario)

        async def block_raw() -> None:
            m = await run_ceiling(
                raw,
                ceiling,
                bench.jobs,
                concurrency=bench.concurrency,
                batch=bench.batch,
                ctr=Counter(bench.jobs),
                server=None,
                prefix=bench.key_prefix,
            )
            theirs.append(m.jobs_per_s)

        async def block_ours() -> None:
            m = await run_throughput(bench, backend, scenario, bench.jobs, Counter(bench.jobs))
            ours.append(m.jobs_per_s)
            await drain(backend, bench.batch)  # untimed: the next block starts from an empty queue

        for i in range(pairs):
            first, second = (block_raw, block_ours) if i % 2 == 0 else (block_ours, block_raw)
            await first()
            await second()
    out = pair_summary(ours, theirs, bench.jobs)
    target = PAIRED_TARGETS.get(scenario)
    return {
        "backend": btype,
        "scenario": scenario,
        "ceiling": ceiling,
        "jobs": bench.jobs,
        "target": target,
        **out,
    }


async def run(url: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every backend and scenario of ``args``, paired with its ceiling, on the server at ``url``."""
    server = aredis.Redis.from_url(url)
    raw = RawClient(url, None)
    bench = Bench(url=url, server=server, jobs=args.jobs, batch=args.batch, concurrency=args.concurrency)
    try:
        await raw.load()
        return [await _pairs(bench, raw, t, s, args.pairs) for s in args.scenarios for t in args.backends]
    finally:
        await raw.aclose()
        if args.url:  # a server we don't own: leave nothing of this run behind
            await delete_run_keys(server, bench.key_prefix)
        await server.aclose()


def markdown(rows: list[dict[str, Any]]) -> str:
    """A table of the median ratio (quartiles) and the pooled ratio per backend and scenario."""
    lines = [
        "| backend | scenario | ceiling | pairs x jobs | median ratio (q1-q3) | pooled ratio | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r.get("target")
        verdict = "—" if t is None else f"≥ {t:.2f}: " + ("pass" if r["median_ratio"] >= t else "**short**")
        lines.append(
            f"| {r['backend']} | {r['scenario']} | {r['ceiling']} | {r['pairs']} x {r['jobs']:,} | "
            f"{r['median_ratio']:.2f} ({r['q1']:.2f}-{r['q3']:.2f}) | {r['pooled_ratio']:.2f} | {verdict} |"
        )
    return "\n".join(lines)


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.paired", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="use this server instead of starting a throwaway redis-server")
    p.add_argument("--backends", type=_csv, default=["redis-lists", "redis-streams"])
    p.add_argument("--scenarios", type=_csv, default=["enqueue_1", "dequeue_many"])
    p.add_argument("--pairs", type=int, default=15, help="pairs of blocks per backend and scenario (15)")
    p.add_argument("--jobs", type=int, default=2000, help="jobs per block (2000)")
    p.add_argument("--batch", type=int, default=100, help="batch size of the *_many scenarios (100)")
    p.add_argument("--concurrency", type=int, default=32, help="tasks in the *_32 scenarios (32)")
    p.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = p.parse_args(argv)
    if args.pairs < 1 or args.jobs < 1:
        p.error("--pairs and --jobs must be at least 1")
    unknown = [s for s in args.scenarios if s not in PAIRED_SCENARIOS]
    if unknown:
        p.error(f"--scenarios: {', '.join(unknown)} not paired (known: {', '.join(PAIRED_SCENARIOS)})")
    if any(t.split("+", 1)[0] not in REDIS_TYPES for t in args.backends):
        p.error("--backends: Redis backend types only (the memory backend has no raw ceiling)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load = loadavg()
    server = None if args.url else bench_server().start()
    try:
        rows = asyncio.run(run(args.url or server.url, args))  # type: ignore[union-attr]
    finally:
        if server is not None:
            server.cleanup()
    print(markdown(rows))
    end = loadavg()
    nan = float("nan")
    print(
        f"(1-min load {load[0] if load else nan:.2f} at the start, {end[0] if end else nan:.2f} at the end)"
    )
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=2))
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

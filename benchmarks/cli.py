"""``python -m benchmarks``: run the harness, print Markdown tables, write ``latest.json``.

Starts a throwaway ``redis-server`` (free port, temp dir, no persistence) unless ``--url`` is
given, measures the raw redis-py ceiling on it, then every scenario of every backend type
that can be imported (a missing module is skipped with its reason), and stops the server at
the end -- on Ctrl-C and SIGTERM too.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import signal
import sys
import time
import timeit
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks import baseline, report
from benchmarks.ceiling import CEILINGS, RawClient, combine, run_ceiling
from benchmarks.cost import linear, memory
from benchmarks.progress import PlainProgress, RichProgress, make_progress
from benchmarks.rounds import merge_rounds, rounds_markdown
from benchmarks.scale import queue_keys, raw_memory, scale
from benchmarks.scenarios import SCENARIOS, THROUGHPUT_SCENARIOS, Bench, backend_family, open_backend
from benchmarks.server import bench_server
from benchmarks.throughput import run_throughput
from benchmarks.workload import loadavg
from queuestore.testing import RedisServer

__all__ = ["delete_run_keys", "main", "parse_args", "run"]

DEFAULT_BACKENDS = ("memory", "redis-lists", "redis-streams", "keydb", "dragonfly")
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
BATCHED = frozenset({"enqueue_many", "dequeue_many"})
DIALECTS = frozenset({"keydb", "dragonfly"})
IN_PROCESS_MEMORY_JOBS = 10_000
IN_PROCESS_SCALE_JOBS = 100_000

Progress = PlainProgress | RichProgress


def _csv(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="queuestore benchmarks: jobs/s, latency and memory per job, beside the raw "
        "redis-py ceiling measured on the same server in the same run.",
    )
    p.add_argument("--url", help="use this server instead of starting a throwaway redis-server")
    p.add_argument("--jobs", type=int, default=50_000, help="jobs per scenario (default 50000)")
    p.add_argument(
        "--backends",
        type=_csv,
        default=list(DEFAULT_BACKENDS),
        help=f"comma-separated backend types (default {','.join(DEFAULT_BACKENDS)}); "
        "a Redis type with +nocoalesce (e.g. redis-lists+nocoalesce) runs it with option coalesce: "
        "false (+coalesce: true, the default)",
    )
    p.add_argument(
        "--scenarios",
        type=_csv,
        default=list(SCENARIOS),
        help=f"comma-separated scenarios (default all: {','.join(SCENARIOS)})",
    )
    p.add_argument("--concurrency", type=int, default=32, help="tasks in the concurrent scenarios (32)")
    p.add_argument("--batch", type=int, default=100, help="batch size of the *_many scenarios (100)")
    p.add_argument(
        "--pool",
        type=int,
        default=None,
        help="cap max_connections of the backends and of the ceiling alike "
        "(default: the library's and redis-py's own defaults)",
    )
    p.add_argument(
        "--dequeue-timeout",
        type=float,
        default=1.0,
        help="DequeueOptions.timeout the consumers pass (1.0: as a worker would; the queue is prefilled)",
    )
    p.add_argument(
        "--memory-jobs",
        type=int,
        default=None,
        help="jobs queued for the memory check (min(100000, 2 x jobs); at most 10000 for memory)",
    )
    p.add_argument(
        "--linear-sizes",
        type=lambda s: [int(x) for x in _csv(s)],
        default=None,
        help="N of the linear-cost check (jobs/5, jobs, 4 x jobs: 10000,50000,200000 by default)",
    )
    p.add_argument(
        "--scale-sizes",
        type=lambda s: [int(x) for x in _csv(s)],
        default=None,
        help="queue depths of the per-operation cost check (jobs/5, 20 x jobs: 10000,1000000 by default; "
        f"the in-process memory backend at most {IN_PROCESS_SCALE_JOBS})",
    )
    p.add_argument(
        "--full-dialects",
        action="store_true",
        help="keydb/dragonfly on a server of another kind run the same scripts as their base "
        "layout: by default with jobs/4 and without memory and linear; this runs them in full",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the throughput scenarios this many times, each round with its own ceilings, "
        "and keep the median round's figure (1: one run)",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help=f"where to write the JSON (default {RESULTS})")
    p.add_argument("--no-progress", action="store_true", help="no live display (CI, tests, pipes)")
    p.add_argument("--server-bin", default=None, help="server binary for the throwaway server")
    p.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="a saved run's JSON (another run's --out): its throughput is printed beside this run's",
    )
    args = p.parse_args(argv)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if args.jobs < 1 or args.concurrency < 1 or args.batch < 1 or args.rounds < 1:
        p.error("--jobs, --concurrency, --batch and --rounds must be >= 1")
    args.memory_jobs = args.memory_jobs or min(100_000, 2 * args.jobs)
    args.linear_sizes = args.linear_sizes or [max(1, args.jobs // 5), args.jobs, 4 * args.jobs]
    args.scale_sizes = args.scale_sizes or [max(1, args.jobs // 5), 20 * args.jobs]
    return args


def _resolve(types: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    """Backend types whose module imports; a skip entry (with the reason) for the others."""
    from benchmarks.scenarios import split_variant as scenarios_split
    from queuestore import default_registry

    ok: list[str] = []
    skips: list[dict[str, Any]] = []
    for t in types:
        try:
            base, variant = scenarios_split(t)
            default_registry().factory(base)
            if variant and variant not in ("coalesce", "nocoalesce"):
                raise ValueError(f"unknown variant {variant!r} (known: coalesce, nocoalesce)")
        except Exception as exc:  # ImportError while being written, unknown type...
            skips.append(
                {"kind": "skip", "backend": t, "scenario": None, "reason": f"{type(exc).__name__}: {exc}"}
            )
        else:
            ok.append(t)
    return ok, skips


def _needed_ceilings(families: set[str], scenarios: list[str]) -> list[str]:
    names: list[str] = []
    for fam in ("lists", "streams"):
        if fam not in families:
            continue
        for s in scenarios:
            c = report.CEILING_OF.get((fam, s))
            for part in (c or "").split("+"):
                if part and part not in names:
                    names.append(part)
    for s, (c, _target) in report.SCRIPT_CEILING_OF.items():
        if s in scenarios and families & {"lists", "streams"} and c not in names:
            names.append(c)
    for (fam, s), refs in report.REFERENCE_CEILING_OF.items():
        if fam in families and s in scenarios:
            names += [c for c in refs if c not in names]
    if "lists" in families and "dequeue_ack_32" in scenarios:
        names.append("coalesced_dequeue_ack_32")  # informational: the stretch's headroom
    return [n for n in CEILINGS if n in names]


async def _server_version(client: Any) -> str:
    info = await client.info("server")
    name = (
        "Dragonfly" if "dragonfly_version" in info else ("KeyDB" if "keydb" in str(info).lower() else "Redis")
    )
    return f"{name} {info.get('dragonfly_version') or info.get('redis_version', '?')}"


async def run(
    args: argparse.Namespace, url: str | None, types: list[str], progress: Progress
) -> list[dict[str, Any]]:
    """Measure everything; return the result entries (without the meta entry)."""
    import redis.asyncio as aredis

    entries: list[dict[str, Any]] = []
    server = aredis.Redis.from_url(url) if url else None
    raw: RawClient | None = None
    bench = Bench(
        url=url,
        server=server,
        jobs=args.jobs,
        concurrency=args.concurrency,
        batch=args.batch,
        pool=args.pool,
        dequeue_timeout=args.dequeue_timeout,
    )
    args.key_prefix = bench.key_prefix
    try:
        if server is not None:
            args.server_label = await _server_version(server)
        # which family (and so which ceiling) each backend type is compared with
        families: dict[str, str] = {}
        for t in types:
            try:
                async with open_backend(bench, t, "probe") as b:
                    families[t] = backend_family(t, b)
            except Exception as exc:
                entries.append(
                    {"kind": "skip", "backend": t, "scenario": None, "reason": f"open failed: {exc!r}"}
                )
                progress.log(f"skip {t}: open failed: {exc!r}")
        ceilings: dict[str, float] = {}
        need = _needed_ceilings(set(families.values()), args.scenarios) if url else []
        if need:
            raw = RawClient(url or "", args.pool)
            await raw.load()
            for name in need:
                desc = CEILINGS[name][0].format(c=args.concurrency, b=args.batch)
                async with progress.task(f"ceiling {name}", args.jobs) as ctr:
                    m = await run_ceiling(
                        raw,
                        name,
                        args.jobs,
                        concurrency=args.concurrency,
                        batch=args.batch,
                        ctr=ctr,
                        server=server,
                        prefix=bench.key_prefix,
                    )
                ceilings[name] = m.jobs_per_s
                entries.append(report.ceiling_entry(name, desc, m))
                entries += report.latency_entries("raw-redis-py", name, m) if "_32" in name else []
                progress.log(f"ceiling {name:<24} {m.jobs_per_s:>10,.0f} jobs/s")
            for fam in ("lists", "streams"):
                c = report.CEILING_OF.get((fam, "end_to_end"))
                if c and all(p in ceilings for p in c.split("+")):
                    a, b = c.split("+")
                    ceilings[c] = combine(ceilings[a], ceilings[b]) or 0.0
        for t, fam in families.items():
            entries += await _run_backend(bench, args, t, fam, ceilings, progress)
        entries += [{"kind": "error", "backend": m.split(" ", 1)[0], "scenario": "cleanup", "error": m}
                    for m in bench.cleanup_errors]  # fmt: skip
    finally:
        if raw is not None:
            await raw.aclose()
        if server is not None:
            if args.url:  # a server we don't own: leave nothing of this run behind
                await delete_run_keys(server, bench.key_prefix)
            await server.aclose()
    return entries


async def delete_run_keys(server: Any, prefix: str) -> None:
    """UNLINK this run's keys (per-queue bookkeeping the backends keep: sequence, wake-up key,
    stream and group...). A benchmark-only SCAN over the run's own prefix; never library code."""
    batch: list[bytes] = []
    async for key in server.scan_iter(match=f"{prefix}*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            await server.unlink(*batch)
            batch.clear()
    if batch:
        await server.unlink(*batch)


async def _run_backend(
    bench: Bench, args: argparse.Namespace, t: str, fam: str, ceilings: dict[str, float], progress: Progress
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    raw_per_job = bench.raw_memory
    server_kind = (getattr(args, "server_label", None) or "").split(" ", 1)[0].lower()
    dialect = t in DIALECTS and server_kind != t and not args.full_dialects
    n = max(min(args.jobs, 1000), args.jobs // 4) if dialect else args.jobs
    if dialect:
        progress.log(f"{t}: a dialect on this {server_kind or 'unknown'} server: {n} jobs per scenario")
    for s in args.scenarios:
        label = f"{t} {s}"
        if dialect and s in ("memory", "linear", "scale"):
            why = (
                f"{t} is a dialect on this {server_kind or 'unknown'} server: same scripts and layout as "
                "the base backend, measured there (--full-dialects to run it anyway)"
            )
            out.append({"kind": "skip", "backend": t, "scenario": s, "reason": why})
            progress.log(f"skip {label}: {why}")
            continue
        try:
            if s == "memory":
                # tracemalloc is exact but slow: the in-process backend needs fewer jobs
                mj = min(args.memory_jobs, IN_PROCESS_MEMORY_JOBS) if fam == "memory" else args.memory_jobs
                keys: list[dict[str, Any]] | None = None
                async with open_backend(bench, t, s) as b, progress.task(label, 2 * mj) as ctr:
                    mres = await memory(bench, b, mj, ctr, in_process=fam == "memory")
                    if fam != "memory" and bench.server is not None:
                        keys = await queue_keys(bench, b.queue)
                raw = None
                if keys is not None:  # the raw hash + list of the same payloads, once per size
                    if mj not in raw_per_job:
                        raw_per_job[mj] = await raw_memory(bench, mj)
                    raw = raw_per_job[mj]
                out.append(report.memory_entry(t, mres, raw, keys))
                progress.log(
                    f"{label:<32} {mres.bytes_per_queued_job:>8.1f} B/queued job "
                    f"{mres.bytes_per_acked_job:>8.2f} B/acked job"
                )
                continue
            if s == "scale":
                sizes = args.scale_sizes
                if fam == "memory":
                    sizes = sorted({min(x, IN_PROCESS_SCALE_JOBS) for x in sizes})
                async with progress.task(label, sum(sizes)) as ctr:
                    sres = await scale(bench, t, sizes, ctr)
                out.append(report.scale_entry(t, sres))
                ratios = ", ".join(f"{op} x{report.ratio_text(sres.ratio(op))}" for op in sres.us_per_op)
                progress.log(f"{label:<32} {ratios}")
                for err in sres.errors:
                    progress.log(f"{label:<32} no figure for {err}")
                continue
            if s == "linear":
                async with progress.task(label, sum(args.linear_sizes)) as ctr:
                    lres = await linear(bench, t, args.linear_sizes, ctr)
                out.append(report.linear_entry(t, lres))
                rates = " / ".join(f"{r:,.0f}" for r in lres.jobs_per_s)
                progress.log(f"{label:<32} {rates} jobs/s (spread {lres.spread:.1%})")
                continue
            async with open_backend(bench, t, s) as b:
                if s in BATCHED and not b.capabilities().batch_operations:
                    out.append({"kind": "skip", "backend": t, "scenario": s, "reason": "no batch_operations"})
                    progress.log(f"skip {label}: no batch_operations")
                    continue
                total = 2 * n if s == "end_to_end" else n
                async with progress.task(label, total) as ctr:
                    m = await run_throughput(bench, b, s, n, ctr)
        except Exception as exc:
            out.append(
                {"kind": "error", "backend": t, "scenario": s, "error": f"{type(exc).__name__}: {exc}"}
            )
            progress.log(f"error {label}: {type(exc).__name__}: {exc}")
            if os.environ.get("QUEUESTORE_BENCH_DEBUG"):
                traceback.print_exc()
            continue
        cname = report.CEILING_OF.get((fam, s))
        crate = ceilings.get(cname) if cname else None
        if crate is None:
            cname = None
        out.append(report.throughput_entry(t, s, m, cname, crate, report.TARGETS.get(s) if crate else None))
        script_c = report.SCRIPT_CEILING_OF.get(s)
        if script_c and fam != "memory" and ceilings.get(script_c[0]):
            c2, t2 = script_c
            out.append(report.throughput_entry(t, f"{s} (vs {c2})", m, c2, ceilings[c2], t2))
            progress.log(f"{label:<32} {m.jobs_per_s / ceilings[c2]:.2f} of {c2}")
        for ref_c in report.REFERENCE_CEILING_OF.get((fam, s), ()):
            if ceilings.get(ref_c):
                out.append(report.throughput_entry(t, f"{s} (vs {ref_c})", m, ref_c, ceilings[ref_c], None))
        if s == "dequeue_ack_32" and crate:
            out.append(report.throughput_entry(t, f"{s} (stretch)", m, cname, crate, report.STRETCH_TARGET))
        if s in report.LATENCY_OPS:
            out += report.latency_entries(t, s, m)
        ratio = f" ({m.jobs_per_s / crate:.2f} of {cname})" if crate else ""
        progress.log(f"{label:<32} {m.jobs_per_s:>10,.0f} jobs/s{ratio}")
    return out


def _meta(args: argparse.Namespace, load_before: Any, elapsed: float) -> dict[str, Any]:
    import redis
    import redis.utils

    try:
        import hiredis

        hiredis_version = getattr(hiredis, "__version__", "yes")
    except ImportError:
        hiredis_version = None
    return {
        "kind": "meta",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "server": getattr(args, "server_label", None),
        "server_url": "throwaway" if not args.url else "given (--url)",
        "python": platform.python_version(),
        "redis_py": redis.__version__,
        "hiredis": hiredis_version if redis.utils.HIREDIS_AVAILABLE else None,
        "cpus": os.cpu_count(),
        "jobs": args.jobs,
        "memory_jobs": args.memory_jobs,
        "linear_sizes": args.linear_sizes,
        "scale_sizes": args.scale_sizes,
        "concurrency": args.concurrency,
        "batch": args.batch,
        "pool": args.pool,
        "rounds": args.rounds,
        "dequeue_timeout": args.dequeue_timeout,
        "key_prefix": getattr(args, "key_prefix", None),
        "backends": args.backends,
        "scenarios": args.scenarios,
        "load_before": [round(x, 2) for x in load_before] if load_before else None,
        "load_after": [round(x, 2) for x in la] if (la := loadavg()) else None,
        "elapsed_s": round(elapsed, 1),
        # how fast this machine runs Python right now: compare runs across machines with it
        "calibration_sum_range_1000_us": round(
            timeit.timeit("sum(range(1000))", number=5000) / 5000 * 1e6, 2
        ),
    }


def _run_rounds(args: argparse.Namespace, url: str | None, types: list[str], progress: Progress) -> list[Any]:
    """``run`` once, then ``--rounds - 1`` more times with the throughput scenarios only; the
    median round of each figure kept (:mod:`benchmarks.rounds`)."""
    scenarios = list(args.scenarios)
    rounds = [asyncio.run(run(args, url, types, progress))]
    args.scenarios = [s for s in scenarios if s in THROUGHPUT_SCENARIOS]
    try:
        for r in range(1, args.rounds if args.scenarios else 1):
            progress.log(f"round {r + 1} of {args.rounds}")
            rounds.append(asyncio.run(run(args, url, types, progress)))
    finally:
        args.scenarios = scenarios
    return merge_rounds(rounds)


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        before = baseline.load_run(args.baseline) if args.baseline is not None else None
    except (OSError, ValueError) as exc:
        print(f"benchmarks: --baseline: {exc}", file=sys.stderr)
        return 2
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm)  # so the finally below stops the server
    progress = make_progress(not args.no_progress)
    load_before = loadavg()
    started = time.perf_counter()
    types, skips = _resolve(args.backends)
    for s in skips:
        progress.log(f"skip {s['backend']}: {s['reason']}")
    server: RedisServer | None = None
    url = args.url
    try:
        if url is None and any(t != "memory" for t in types):
            server = bench_server(args.server_bin).start()
            url = server.url
            progress.log(f"throwaway redis-server on {url} (pid {server.pid})")
        with progress:
            entries = _run_rounds(args, url, types, progress)
    except KeyboardInterrupt:
        print("benchmarks: interrupted", file=sys.stderr)
        return 130
    finally:
        if server is not None:
            server.cleanup()
    entries = [_meta(args, load_before, time.perf_counter() - started), *skips, *entries]
    print(report.markdown(entries))
    if args.rounds > 1:
        print(rounds_markdown(entries))
    if before is not None and args.baseline is not None:
        print(baseline.compare_markdown(entries, before, args.baseline.name))
    report.write_json(args.out, entries)
    print(f"wrote {args.out}", file=sys.stderr)
    return 1 if any(e.get("kind") == "error" for e in entries) else 0

"""``python -m benchmarks.profile``: one scenario of one backend under pyinstrument.

Prints where the client's time goes (the hot path) and writes the text report to
``benchmarks/results/profile-<backend>-<scenario>.txt``. Starts a throwaway server unless
``--url``. Needs ``pip install pyinstrument``.

    python -m benchmarks.profile --backend redis-lists --scenario dequeue_ack_32 --jobs 5000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

from benchmarks.progress import PlainProgress
from benchmarks.scenarios import THROUGHPUT_SCENARIOS, Bench, fill, open_backend
from benchmarks.server import bench_server
from benchmarks.throughput import run_throughput
from benchmarks.workload import make_jobs

RESULTS = Path(__file__).resolve().parent / "results"
PROFILED = THROUGHPUT_SCENARIOS


async def _run(args: argparse.Namespace, url: str | None) -> Any:
    import redis.asyncio as aredis

    server = aredis.Redis.from_url(url) if url else None
    bench = Bench(url=url, server=server, jobs=args.jobs, concurrency=args.concurrency)
    progress = PlainProgress(quiet=True)
    n, c, s = args.jobs, args.concurrency, args.scenario
    try:
        async with open_backend(bench, args.backend, s) as b, progress.task(s, n) as ctr:
            if s.startswith("dequeue"):  # the prefill is not what we profile
                await fill(b, make_jobs(b.queue, n), c)
            profiler: Any = None
            if args.sampler == "pyinstrument":
                from pyinstrument import Profiler

                # "disabled": sample what the thread runs (CPU), not time spent awaiting the server
                profiler = Profiler(interval=args.interval, async_mode="enabled" if args.wall else "disabled")
            with profiler or contextlib.nullcontext():
                m = await run_throughput(bench, b, s, n, ctr, prefill=False)
        return profiler, m
    finally:
        if server is not None:
            await server.aclose()


def _categorise(frame: str) -> str:
    """The package a py-spy frame ``func (path:line)`` belongs to."""
    path = frame.rsplit("(", 1)[-1]
    for key, name in (
        ("queuestore/backends/_redis", "queuestore redis plumbing"),
        ("queuestore/", "queuestore"),
        ("redis/_parsers", "redis-py parser (hiredis)"),
        ("redis/", "redis-py"),
        ("asyncio/", "asyncio"),
        ("anyio/", "anyio"),
        ("msgspec", "msgspec"),
        ("uuid.py", "uuid"),
        ("benchmarks/", "harness"),
    ):
        if key in path:
            return name
    return "other"


def summarise_collapsed(path: Path, top: int = 25) -> str:
    """Self and inclusive time per function, and self time per package, from py-spy's raw
    (collapsed) output, counting only samples inside the scenario's worker code."""
    from collections import Counter as Tally

    self_t: Tally[str] = Tally()
    incl: Tally[str] = Tally()
    cats: Tally[str] = Tally()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        # "func (path:line)" -> "func (path)": one row per function, not per line
        frames = [f.rsplit(":", 1)[0] + ")" if f.endswith(")") and ":" in f else f for f in stack.split(";")]
        if not any("benchmarks/throughput.py" in f for f in frames) or any(
            f.startswith(("fill (", "drain (", "open_backend (", "make_jobs (")) for f in frames
        ):
            continue  # setup, prefill, cleanup, interpreter start
        n = int(count)
        total += n
        self_t[frames[-1]] += n
        cats[_categorise(frames[-1])] += n
        for f in set(frames):
            incl[f] += n
    if not total:
        return "no samples inside the scenario\n"
    out = [f"{total} on-CPU samples inside the scenario", "", "self time by package:"]
    out += [f"  {100 * n / total:5.1f}%  {c}" for c, n in cats.most_common()]
    out += ["", f"top {top} functions by inclusive time:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in incl.most_common(top)]
    out += ["", f"top {top} functions by self time:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in self_t.most_common(top)]
    return "\n".join(out) + "\n"


def _py_spy(args: argparse.Namespace, url: str | None, out: Path) -> int:
    import shutil
    import subprocess
    import tempfile

    # installed into this interpreter's environment, it sits beside it even when that is not on PATH
    exe = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if exe is None:
        print("--sampler py-spy needs py-spy: pip install py-spy", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "stacks.txt"
        child = [
            sys.executable,
            "-m",
            "benchmarks.profile",
            "--sampler",
            "none",
            "--backend",
            args.backend,
            "--scenario",
            args.scenario,
            "--jobs",
            str(args.jobs),
            "--concurrency",
            str(args.concurrency),
        ]
        if url:
            child += ["--url", url]
        cmd = [exe, "record", "--rate", str(int(1 / args.interval)), "--format", "raw", "--nonblocking",
               "-o", str(raw), "--", *child]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not raw.exists():
            print(proc.stdout, proc.stderr, sep="\n", file=sys.stderr)
            return proc.returncode or 1
        head = next((ln for ln in proc.stdout.splitlines() if ln.startswith("# ")), "")
        text = (
            f"{head}\n(py-spy, {int(1 / args.interval)} Hz, on-CPU samples only)\n\n"
            + summarise_collapsed(raw)
        )
    out.write_text(text)
    print(text)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.splitlines()[0])
    p.add_argument("--backend", required=True)
    p.add_argument("--scenario", required=True, choices=PROFILED)
    p.add_argument("--jobs", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument(
        "--sampler",
        choices=("pyinstrument", "py-spy", "none"),
        default="pyinstrument",
        help="pyinstrument (in process; its per-call hook slows call-heavy code 3-5x), py-spy "
        "(sampling from outside: no overhead; summarised per package and function), none",
    )
    p.add_argument("--interval", type=float, default=0.001, help="sampling interval, seconds")
    p.add_argument("--wall", action="store_true", help="pyinstrument: attribute awaited time to the awaiter")
    p.add_argument("--show-all", action="store_true", help="pyinstrument: show library frames too")
    p.add_argument("--url")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.sampler == "pyinstrument":
        try:
            import pyinstrument  # noqa: F401
        except ImportError:
            print("benchmarks.profile needs pyinstrument: pip install pyinstrument", file=sys.stderr)
            return 2
    out = args.out or RESULTS / f"profile-{args.backend}-{args.scenario}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    server = None
    url = args.url
    try:
        if url is None and args.backend != "memory":
            server = bench_server().start()
            url = server.url
        if args.sampler == "py-spy":
            return _py_spy(args, url, out)
        profiler, m = asyncio.run(_run(args, url))
    finally:
        if server is not None:
            server.cleanup()
    head = (
        f"# {args.backend} {args.scenario}: {m.jobs} jobs, {m.jobs_per_s:,.0f} jobs/s, "
        f"client CPU {m.client_cpu_us_per_job():.1f} µs/job"
        + (f", server CPU {m.server_cpu_us_per_job():.1f} µs/job" if m.server_cpu_s is not None else "")
    )
    if profiler is None:
        print(head)
        return 0
    text = profiler.output_text(unicode=True, color=False, show_all=args.show_all)
    head += " (under pyinstrument)\n"
    out.write_text(head + text)
    print(head + text)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

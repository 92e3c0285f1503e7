"""Client instructions per lone ``enqueue()`` or per job of a batch drain: ``python -m
benchmarks.clientcost``.

Starts a throwaway ``redis-server``, then runs this process again under ``valgrind
--tool=callgrind`` (the Python client only: the server is another process and not traced),
zeroing the counters before the measured calls and dumping them after (``callgrind_control``),
and prints the instructions per call or job. Instruction counts do not depend on the machine's
load: the figure to compare two versions of the client path with. Kernel time (the socket
calls) is not counted. Needs ``valgrind`` (with ``callgrind_control``).

- ``--scenario enqueue_1``: ``--jobs`` lone ``enqueue()`` calls after 100 untimed ones; ``raw``
  is the harness's ceiling (plain ``redis.asyncio.Redis``, EVALSHA of a one-``LPUSH`` script,
  one by one).
- ``--scenario enqueue_many``: ``--jobs`` jobs stored with ``enqueue_many`` in batches of 100
  after one untimed batch; ``raw`` sends each batch as a pipeline of 100 EVALSHA of the
  one-``LPUSH`` script (the harness's ``evalsha_pipeline_100``).
- ``--scenario dequeue_many``: ``--jobs`` jobs enqueued untimed, one batch drained untimed, the
  rest drained with ``dequeue_many(count=100)`` + ``ack_many``; ``raw-lists`` and
  ``raw-streams`` are the raw drains of ``benchmarks/rawbatch.py`` on as many jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as aredis

from benchmarks.instrcost import _last_total
from benchmarks.rawbatch import drain_lists, drain_stream, fill_lists, fill_stream
from benchmarks.workload import make_jobs, raw_jobs
from queuestore import BackendConfig, DequeueOptions, QueueBackend, default_registry
from queuestore.testing import RedisServer

__all__ = ["main"]


#: the clients of each scenario: raw ones first, then the backends
_KINDS = {
    "enqueue_1": "raw,redis-lists,redis-streams",
    "enqueue_many": "raw,redis-lists,redis-streams",
    "dequeue_many": "raw-lists,raw-streams,redis-lists,redis-streams",
}


def _ctl(flag: str) -> None:
    subprocess.run(["callgrind_control", flag, str(os.getpid())], check=True, capture_output=True)


async def _backend(url: str, kind: str) -> QueueBackend:
    """A backend of ``kind`` on a fresh queue, its maintenance loop out of the way."""
    queue = f"client-{uuid.uuid4().hex[:8]}"
    options = {"key_prefix": "qsclient:", "reclaim_interval": 3600}
    cfg = BackendConfig(type=kind, name="client", url=url, queue=queue, options=options)
    return await default_registry().factory(kind).create(cfg)


async def _count(url: str, kind: str, n: int, work: Path) -> float:
    """Inside callgrind: instructions per call of ``n`` lone calls of ``kind``."""
    if kind == "raw":
        r: Any = aredis.Redis.from_url(url)
        sha = await r.script_load("return redis.call('LPUSH', KEYS[1], ARGV[1])")
        entries = raw_jobs(n + 100)
        for e in entries[:100]:
            await r.evalsha(sha, 1, "{raw}:ready", e)
        _ctl("-z")
        for e in entries[100:]:
            await r.evalsha(sha, 1, "{raw}:ready", e)
        _ctl("-d")
        await r.aclose()
    else:
        async with await _backend(url, kind) as b:
            jobs = make_jobs(b.queue, n + 100)
            for job in jobs[:100]:
                await b.enqueue(job)
            _ctl("-z")
            for job in jobs[100:]:
                await b.enqueue(job)
            _ctl("-d")
    return _last_total(work, os.getpid()) / n


async def _count_batches(url: str, kind: str, n: int, work: Path) -> float:
    """Inside callgrind: instructions per job of ``n`` jobs stored in batches of 100."""
    if kind == "raw":
        r: Any = aredis.Redis.from_url(url)
        sha = await r.script_load("return redis.call('LPUSH', KEYS[1], ARGV[1])")
        entries = raw_jobs(n + 100)

        async def send(batch: list[bytes]) -> None:
            pipe = r.pipeline(transaction=False)
            for e in batch:
                pipe.evalsha(sha, 1, "{raw}:ready", e)
            await pipe.execute()

        await send(entries[:100])
        _ctl("-z")
        for i in range(100, len(entries), 100):
            await send(entries[i : i + 100])
        _ctl("-d")
        await r.aclose()
    else:
        async with await _backend(url, kind) as b:
            jobs = make_jobs(b.queue, n + 100)
            await b.enqueue_many(jobs[:100])
            _ctl("-z")
            for i in range(100, len(jobs), 100):
                await b.enqueue_many(jobs[i : i + 100])
            _ctl("-d")
    return _last_total(work, os.getpid()) / n


async def _count_drain(url: str, kind: str, n: int, work: Path) -> float:
    """Inside callgrind: instructions per job of a batch drain of ``n`` jobs by ``kind``."""
    if kind in ("raw-lists", "raw-streams"):
        r: Any = aredis.Redis.from_url(url)
        fill, drain = (fill_lists, drain_lists) if kind == "raw-lists" else (fill_stream, drain_stream)
        state = await fill(r, n)
        _ctl("-z")
        await drain(r, state)
        _ctl("-d")
        await r.aclose()
    else:
        async with await _backend(url, kind) as b:
            jobs = make_jobs(b.queue, n + 100)
            for i in range(0, len(jobs), 1000):
                await b.enqueue_many(jobs[i : i + 1000])
            opts = DequeueOptions(count=100, timeout=0)
            await b.ack_many(await b.dequeue_many(opts))
            _ctl("-z")
            while got := await b.dequeue_many(opts):
                await b.ack_many(got)
            _ctl("-d")
    return _last_total(work, os.getpid()) / n


def _outer(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="clientcost-"))
    server = RedisServer()
    server.start()
    try:
        if args.scenario == "enqueue_1":
            print(f"client instructions per lone enqueue(), {args.jobs} calls")
            print("| client | run | instructions per call |")
        elif args.scenario == "enqueue_many":
            print(f"client instructions per job of enqueue_many(100), {args.jobs} jobs")
            print("| client | run | instructions per job |")
        else:
            print(f"client instructions per job of dequeue_many(100) + ack_many, {args.jobs} jobs")
            print("| client | run | instructions per job |")
        print("|---|---|---|")
        kinds = args.kinds or _KINDS[args.scenario]
        for kind in kinds.split(","):
            for run in range(args.repeat):
                cmd = [
                    "valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/cg.%p",
                    sys.executable, "-m", "benchmarks.clientcost", "--inner", kind,
                    "--scenario", args.scenario, "--url", server.url, "--jobs", str(args.jobs),
                    "--work", str(work),
                ]  # fmt: skip
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()
                print(f"| {kind} | {run + 1} | {float(out):,.0f} |", flush=True)
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    """Parse the arguments; print one table row per client kind and run."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.clientcost", description=__doc__.split("\n\n")[0].replace("\n", " ")
    )
    p.add_argument("--scenario", choices=sorted(_KINDS), default="enqueue_1")
    p.add_argument("--kinds", help="backend types and raw clients (default: all of the scenario's)")
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--inner", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        count = {"enqueue_1": _count, "enqueue_many": _count_batches}.get(args.scenario, _count_drain)
        print(asyncio.run(count(args.url, args.inner, args.jobs, Path(args.work))))
        return
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        p.error("needs valgrind and callgrind_control on PATH")
    _outer(args)


if __name__ == "__main__":
    main()

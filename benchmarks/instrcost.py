"""Server instructions per job of the batch path, or per lone ``enqueue()``: ``python -m
benchmarks.instrcost`` (``--scenario enqueue_1`` for the lone call, ``enqueue_many`` for
batches of 100).

Runs a throwaway ``redis-server`` under ``valgrind --tool=callgrind`` with collection toggled
on one server function (default ``evalGenericCommand``: the script calls, the commands they
call included; ``processCommand`` counts every command), fills a queue with ``--jobs`` jobs,
then drains it with ``dequeue_many(count=100)`` + ``ack_many``, zeroing the counters before
each call and dumping them after. Instruction counts do not depend on the machine's load, so
two versions of a script can be compared on a busy machine. The maintenance loop is off
(``reclaim_interval`` of an hour): under valgrind the server is ~50 times slower and the
periodic sweep would land in many calls. ``--scenario enqueue_1`` fills the queue with 1,000
jobs first (so its hashes are past their listpack size, as in the harness's 20,000), then counts
``--jobs`` lone ``enqueue()`` calls together and divides; its ``--ceiling`` is the harness's
(EVALSHA of a one-``LPUSH`` script, one by one). ``--scenario enqueue_many`` likewise counts
``--jobs`` jobs stored with ``enqueue_many(100)``; its ``--ceiling`` is pipelines of 100 such
EVALSHA (each a command of its own: count both with ``--toggle processCommand``). The drain's
``--ceiling`` counts the raw batch
drains of ``benchmarks/rawbatch.py`` on as many jobs. Needs ``valgrind`` (with
``callgrind_control``).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as aredis

from benchmarks.rawbatch import drain_lists, drain_stream, fill_lists, fill_stream
from queuestore import BackendConfig, DequeueOptions, Job, default_registry
from queuestore.testing import RedisServer

__all__ = ["main"]


def _wrapper(work: Path, toggle: str) -> Path:
    """A server binary that is redis-server under callgrind, its dumps in ``work``."""
    server = shutil.which("redis-server") or "redis-server"
    script = work / "redis-server-callgrind"
    script.write_text(
        "#!/bin/sh\n"
        f"exec valgrind --tool=callgrind --toggle-collect={toggle} "
        f'--callgrind-out-file={work}/cg.%p {server} "$@"\n'
    )
    script.chmod(0o755)
    return script


def _ctl(flag: str, pid: int) -> None:
    """``callgrind_control -z`` (zero the counters) or ``-d`` (dump them) of the server."""
    subprocess.run(["callgrind_control", flag, str(pid)], check=True, capture_output=True)


def _last_total(work: Path, pid: int) -> int:
    dumps = sorted(work.glob(f"cg.{pid}.*"), key=lambda p: p.stat().st_mtime)
    for line in dumps[-1].read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    return 0


async def _drain(url: str, pid: int, work: Path, btype: str, n: int) -> tuple[list[int], list[int]]:
    queue = f"instr-{uuid.uuid4().hex[:8]}"
    options = {"key_prefix": "qsinstr:", "reclaim_interval": 3600}
    cfg = BackendConfig(type=btype, name="instr", url=url, queue=queue, options=options)
    takes: list[int] = []
    acks: list[int] = []
    async with await default_registry().factory(btype).create(cfg) as b:
        jobs = [Job(queue=queue, payload={"n": i, "pad": "x" * 180}) for i in range(n)]
        for i in range(0, n, 500):
            await b.enqueue_many(jobs[i : i + 500])
        while True:
            _ctl("-z", pid)
            got = await b.dequeue_many(DequeueOptions(count=100, timeout=0.0))
            _ctl("-d", pid)
            if not got:
                break
            takes.append(_last_total(work, pid))
            _ctl("-z", pid)
            await b.ack_many(got)
            _ctl("-d", pid)
            acks.append(_last_total(work, pid))
    return takes, acks


async def _stores(url: str, pid: int, work: Path, btype: str, n: int, batch: int) -> float:
    """Instructions per job of ``n`` jobs stored (counted together): lone ``enqueue()`` calls
    when ``batch`` is 1 (after 20 uncounted ones), ``enqueue_many(batch)`` otherwise; on a queue
    holding 1,000 jobs first."""
    queue = f"instr-{uuid.uuid4().hex[:8]}"
    options = {"key_prefix": "qsinstr:", "reclaim_interval": 3600}
    cfg = BackendConfig(type=btype, name="instr", url=url, queue=queue, options=options)
    async with await default_registry().factory(btype).create(cfg) as b:
        await b.enqueue_many([Job(queue=queue, payload={"pad": "x" * 180}) for _ in range(1000)])
        warm = 20 if batch == 1 else 0
        jobs = [Job(queue=queue, payload={"n": i, "pad": "x" * 180}) for i in range(n + warm)]
        for job in jobs[:warm]:  # the first store of a new queue sweeps
            await b.enqueue(job)
        jobs = jobs[warm:]
        _ctl("-z", pid)
        if batch == 1:
            for job in jobs:
                await b.enqueue(job)
        else:
            for i in range(0, n, batch):
                await b.enqueue_many(jobs[i : i + batch])
        _ctl("-d", pid)
    return _last_total(work, pid) / n


async def _stores_ceiling(url: str, pid: int, work: Path, n: int, batch: int) -> float:
    """The harness's ceiling of the same stores: EVALSHA of a one-``LPUSH`` script, one by one
    when ``batch`` is 1, else in pipelines of ``batch`` (count those with ``--toggle
    processCommand``: each EVALSHA is a command)."""
    r: Any = aredis.Redis.from_url(url)
    sha = await r.script_load("return redis.call('LPUSH', KEYS[1], ARGV[1])")
    key = f"{{instr-raw-{uuid.uuid4().hex[:8]}}}:ready"
    entries = [uuid.uuid4().hex.encode() + b"|" + b"x" * 199 for _ in range(n)]
    _ctl("-z", pid)
    if batch == 1:
        for e in entries:
            await r.evalsha(sha, 1, key, e)
    else:
        for i in range(0, n, batch):
            pipe = r.pipeline(transaction=False)
            for e in entries[i : i + batch]:
                pipe.evalsha(sha, 1, key, e)
            await pipe.execute()
    _ctl("-d", pid)
    await r.delete(key)
    await r.aclose()
    return _last_total(work, pid) / n


#: the store scenarios: jobs per call, the table's title, and the ceiling's row label
_STORES = {
    "enqueue_1": (1, "instructions per lone enqueue()", "raw EVALSHA (LPUSH) one by one"),
    "enqueue_many": (
        100,
        "instructions per job of enqueue_many(100)",
        "raw pipelines of 100 EVALSHA (LPUSH)",
    ),
}


async def _ceilings(url: str, pid: int, work: Path, n: int) -> dict[str, float]:
    """The raw batch drains (``benchmarks/rawbatch.py``): the lists scripts, and XREADGROUP
    COUNT 100 + XACK and XDEL on entries of the same fields as the streams backend writes;
    count them with ``--toggle processCommand``."""
    r: Any = aredis.Redis.from_url(url)
    out: dict[str, float] = {}
    drains: list[tuple[str, Any, Any]] = [
        ("raw RPOP n + ZADD + HMGET; ZREM + HDEL", fill_lists, drain_lists),
        ("raw XREADGROUP COUNT 100 + XACK and XDEL", fill_stream, drain_stream),
    ]
    for label, fill, drain in drains:
        state = await fill(r, n)
        _ctl("-z", pid)
        await drain(r, state)
        _ctl("-d", pid)
        out[label] = _last_total(work, pid) / n
    await r.aclose()
    return out


async def _main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="instrcost-"))
    server = RedisServer(
        binary=str(_wrapper(work, args.toggle)), extra_args=["--slowlog-log-slower-than", "-1"]
    )
    server.start()
    try:
        pid = server.pid
        assert pid is not None
        if args.scenario in _STORES:
            batch, title, raw_label = _STORES[args.scenario]
            print(f"{title} in {args.toggle}, {args.jobs} jobs")
            print(f"| backend | run | {args.scenario} |")
            print("|---|---|---|")
            for btype in args.backends.split(","):
                for run in range(args.repeat):
                    per_job = await _stores(server.url, pid, work, btype, args.jobs, batch)
                    print(f"| {btype} | {run + 1} | {per_job:,.0f} |", flush=True)
            if args.ceiling:
                raw = await _stores_ceiling(server.url, pid, work, args.jobs, batch)
                print(f"| {raw_label} | | {raw:,.0f} |")
            return
        print(f"instructions per job in {args.toggle}, {args.jobs} jobs, dequeue_many(100) + ack_many")
        print(
            "| backend | run | dequeue_many | ack_many | both | median call / 100: dequeue_many, ack_many |"
        )
        print("|---|---|---|---|---|---|")
        for btype in args.backends.split(","):
            for run in range(args.repeat):
                takes, acks = await _drain(server.url, pid, work, btype, args.jobs)
                t, a = sum(takes) / args.jobs, sum(acks) / args.jobs
                print(
                    f"| {btype} | {run + 1} | {t:,.0f} | {a:,.0f} | {t + a:,.0f} | "
                    f"{statistics.median(takes) / 100:,.0f}, {statistics.median(acks) / 100:,.0f} |",
                    flush=True,
                )
        if args.ceiling:
            for label, raw in (await _ceilings(server.url, pid, work, args.jobs)).items():
                print(f"| {label} | | | | {raw:,.0f} | |")
    finally:
        server.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    """Parse the arguments and print one table row per backend and run."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.instrcost", description=__doc__.split("\n\n")[0].replace("\n", " ")
    )
    p.add_argument("--backends", default="redis-streams")
    p.add_argument("--jobs", type=int, default=2000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--toggle", default="evalGenericCommand", help="the server function counted")
    p.add_argument("--scenario", choices=("drain", *_STORES), default="drain")
    p.add_argument(
        "--ceiling", action="store_true", help="also the raw batch drains (use --toggle processCommand)"
    )
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        p.error("needs valgrind and callgrind_control on PATH")
    asyncio.run(_main(p.parse_args()))


if __name__ == "__main__":
    main()

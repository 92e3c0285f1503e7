"""Server cost per job from INFO commandstats: ``python -m benchmarks.scriptcost``.

Where the harness's ``server µs/job`` is the server process's CPU (INFO cpu: network I/O and
event loop included, so it moves with the client's pace and the machine's load), this reads
the time the server spent *in the commands* (``cmdstat_*:usec``, the scripts' own commands
included), reset before each timed part. It is the figure to compare two versions of a
script. Client CPU per job (``time.process_time``) is printed beside it; each figure is the
median of ``--repeat`` rounds (each round runs every backend and scenario once, interleaved) on
a fresh queue of a throwaway server.

Scenarios: ``enqueue_1`` (awaited one by one), ``enqueue_many`` (batches of 100),
``dequeue_ack_1`` (one consumer: dequeue, ack), ``dequeue_ack_32`` (32 consumers), and
``dequeue_many`` (``dequeue_many(100)`` + ``ack_many``); dequeue scenarios run on a queue
filled before the reset. With ``dequeue_many``, two raw drains of the same jobs run in the same
server beside the backends (``benchmarks/rawbatch.py``): the lists scripts (``RPOP n`` +
``ZADD`` + ``HMGET``; ``ZREM`` + ``HDEL``) and ``XREADGROUP COUNT 100`` + ``XACK`` and ``XDEL``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aredis

from benchmarks.rawbatch import (
    LISTS_COMMANDS,
    STREAMS_COMMANDS,
    drain_lists,
    drain_stream,
    fill_lists,
    fill_stream,
)
from benchmarks.server import bench_server
from queuestore import BackendConfig, DequeueOptions, Job, default_registry
from queuestore.abc import QueueBackend

__all__ = ["main"]

SCENARIOS = ("enqueue_1", "enqueue_many", "dequeue_ack_1", "dequeue_ack_32", "dequeue_many")
#: what the backends send in these scenarios (the queue is filled, so nobody blocks)
_SENT = {"cmdstat_evalsha", "cmdstat_eval", "cmdstat_blpop", "cmdstat_xreadgroup", "cmdstat_script"}


def _jobs(queue: str, n: int) -> list[Job]:
    return [Job(queue=queue, payload={"n": i, "pad": "x" * 180}) for i in range(n)]


async def _server_usec(r: Any) -> tuple[float, int]:
    """Microseconds spent in the commands the client sent since the last reset, and how many
    of them were scripts. A command a script calls is counted under its own name too (and in
    the script's time), so only the commands a client sends count: the scripts, and the few
    plain commands the backends send (a blocking wait, a plain read)."""
    stats = await r.info("commandstats")
    usec = sum(float(v["usec"]) for k, v in stats.items() if k in _SENT)
    evals = sum(int(v["calls"]) for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))
    return usec, evals


async def _consume(b: QueueBackend, tasks: int) -> None:
    async def one() -> None:
        while (job := await b.dequeue(DequeueOptions(timeout=0.0))) is not None:
            await b.ack(job)

    await asyncio.gather(*(one() for _ in range(tasks)))


async def _many(b: QueueBackend) -> None:
    while got := await b.dequeue_many(DequeueOptions(count=100, timeout=0.0)):
        await b.ack_many(got)


async def _run(url: str, r: Any, btype: str, scenario: str, n: int, opts: dict[str, Any]) -> dict[str, float]:
    queue = f"cost-{uuid.uuid4().hex[:8]}"
    options = {"key_prefix": "qscost:", **opts}
    cfg = BackendConfig(type=btype, name="cost", url=url, queue=queue, options=options)
    b = await default_registry().factory(btype).create(cfg)
    async with b:
        jobs = _jobs(queue, n)
        work: Callable[[], Awaitable[Any]]
        if scenario == "enqueue_1":

            async def work() -> None:
                for job in jobs:
                    await b.enqueue(job)
        elif scenario == "enqueue_many":

            async def work() -> None:
                for i in range(0, n, 100):
                    await b.enqueue_many(jobs[i : i + 100])
        else:
            for i in range(0, n, 500):
                await b.enqueue_many(jobs[i : i + 500])
            if scenario == "dequeue_many":

                async def work() -> None:
                    await _many(b)
            else:
                tasks = 32 if scenario == "dequeue_ack_32" else 1

                async def work() -> None:
                    await _consume(b, tasks)

        await r.config_resetstat()
        cpu, wall = time.process_time(), time.perf_counter()
        await work()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        usec, evals = await _server_usec(r)
        if scenario.startswith("enqueue"):
            await _many(b)
    return {
        "server_us": usec / n,
        "client_us": cpu * 1e6 / n,
        "jobs_per_s": n / wall,
        "evals_per_job": evals / n,
    }


#: the raw drains of ``dequeue_many``: row label -> (fill, drain, the commands they send)
_RAW: dict[str, tuple[Any, Any, tuple[str, ...]]] = {
    "raw: RPOP n + ZADD + HMGET; ZREM + HDEL": (fill_lists, drain_lists, LISTS_COMMANDS),
    "raw: XREADGROUP COUNT 100 + XACK and XDEL": (fill_stream, drain_stream, STREAMS_COMMANDS),
}


async def _run_raw(r: Any, label: str, n: int) -> dict[str, float]:
    fill, drain, sent = _RAW[label]
    state = await fill(r, n)
    await r.config_resetstat()
    cpu, wall = time.process_time(), time.perf_counter()
    done = await drain(r, state)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert done == n, (label, done, n)
    stats = await r.info("commandstats")
    usec = sum(float(v["usec"]) for k, v in stats.items() if k in sent)
    evals = sum(int(v["calls"]) for k, v in stats.items() if k == "cmdstat_evalsha")
    return {
        "server_us": usec / n,
        "client_us": cpu * 1e6 / n,
        "jobs_per_s": n / wall,
        "evals_per_job": evals / n,
    }


def _row(label: str, scenario: str, runs: list[dict[str, float]]) -> str:
    med = {k: statistics.median(x[k] for x in runs) for k in runs[0]}
    return (
        f"| {label} | {scenario} | {med['server_us']:.2f} | {med['client_us']:.1f} | "
        f"{med['jobs_per_s']:,.0f} | {med['evals_per_job']:.3f} |"
    )


async def _main(args: argparse.Namespace) -> None:
    server = bench_server()
    server.start()
    try:
        r = aredis.Redis.from_url(server.url)
        opts: dict[str, Any] = {} if args.coalesce is None else {"coalesce": args.coalesce == "on"}
        print(f"median of {args.repeat} runs of {args.jobs} jobs each")
        print("| backend | scenario | server µs/job | client µs/job | jobs/s | scripts/job |")
        print("|---|---|---|---|---|---|")
        # the rounds interleave every backend (and the raw drains) so that the machine's drift
        # over a run lands on all of them alike
        rows: dict[tuple[str, str], list[dict[str, float]]] = {}
        for _ in range(args.repeat):
            for btype in args.backends.split(","):
                for scenario in args.scenarios.split(","):
                    run = await _run(server.url, r, btype, scenario, args.jobs, opts)
                    rows.setdefault((btype, scenario), []).append(run)
            if "dequeue_many" in args.scenarios.split(","):
                for label in _RAW:
                    rows.setdefault((label, "dequeue_many"), []).append(await _run_raw(r, label, args.jobs))
        for (label, scenario), runs in rows.items():
            print(_row(label, scenario, runs), flush=True)
        await r.aclose()
    finally:
        server.cleanup()


def main() -> None:
    """Parse the arguments and print one table row per backend and scenario."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.scriptcost", description=__doc__.split("\n")[0])
    p.add_argument("--backends", default="redis-lists,redis-streams")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--jobs", type=int, default=5000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--coalesce", choices=("on", "off"), default=None, help="default: the backend's default")
    asyncio.run(_main(p.parse_args()))


if __name__ == "__main__":
    main()

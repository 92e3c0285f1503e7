"""The load behind the ``stats --watch`` capture (see captures.py): a producer and a worker on
the ``reports`` queue (redis-streams), some jobs nacked into the dead letters, until killed.

Usage: ``python docs/_build/captures_load.py REDIS_URL``
"""

from __future__ import annotations

import sys

import anyio

import queuestore as qs


async def main(url: str) -> None:
    cfg = qs.BackendConfig(
        type="redis-streams", name="load", url=url, queue="reports", options={"key_prefix": "capture-st:"}
    )
    async with await qs.default_registry().create(cfg.type, cfg) as backend:

        async def produce() -> None:
            n = 0
            while True:
                await backend.enqueue_many(
                    [qs.Job(type="report", payload={"n": n + i}, max_retries=0) for i in range(20)]
                )
                n += 20
                await anyio.sleep(0.1)

        async def work() -> None:
            while True:
                got = await backend.dequeue_many(qs.DequeueOptions(count=50, timeout=0.5))
                for job in got:
                    if job.payload["n"] % 97 == 0:
                        await backend.nack(job, requeue=False, error="report template missing")
                    else:
                        await backend.ack(job)
                await anyio.sleep(0.05)

        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            tg.start_soon(work)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])

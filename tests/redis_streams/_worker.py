"""A consumer process for the kill -9 test: dequeue one job, print its id, then hang."""

from __future__ import annotations

import sys

import anyio

from queuestore import BackendConfig
from queuestore.backends.redis_streams import RedisStreamsFactory


async def main(url: str, queue: str, prefix: str) -> None:
    cfg = BackendConfig(
        type="redis-streams", url=url, queue=queue,
        options={"key_prefix": prefix, "claim_min_idle": 1.0, "consumer_name": "doomed"},
    )  # fmt: skip
    backend = await RedisStreamsFactory().create(cfg)
    job = await backend.dequeue()
    assert job is not None
    print(job.id, flush=True)
    await anyio.sleep(600)  # "working" until killed


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:4])

"""A server stalled (SIGSTOP) longer than ``read_timeout``, on both Redis layouts: the backend
re-sends each timed-out call (same call id) on a new connection, and the server, once resumed,
runs every copy it received. The copies after the first return the first one's reply, so each
call has one effect and reports it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest

from queuestore import BackendConfig, DequeueOptions, Job, JobState

from .layouts import Layout

pytestmark = pytest.mark.anyio


async def backend_on(layout: Layout, url: str) -> Any:
    cfg = BackendConfig(
        type=layout.type,
        name="stall",
        url=url,
        queue="stalled",
        # call_margin longer than the stalls: these tests are about the retries inside one call
        # (tests/redis_plumbing/test_stalls.py covers a dequeue ending at its deadline instead)
        options={
            "read_timeout": 0.5,
            "write_timeout": 0.5,
            "max_retries": 3,
            "strict_keys": True,
            "call_margin": 10,
        },
    )
    return await layout.factory().create(cfg)


async def stall(server: Any, seconds: float) -> None:
    server.pause()
    try:
        await anyio.sleep(seconds)
    finally:
        server.resume()


async def test_each_call_during_a_stall_has_one_effect(layout: Layout, redis_server_factory: Any) -> None:
    server = redis_server_factory()
    worker, producer = await backend_on(layout, server.url), await backend_on(layout, server.url)
    try:
        await producer.enqueue_many([Job(id=f"s{i}", payload=i, max_retries=3) for i in range(4)])
        acked, nacked, dead = await worker.dequeue(), await worker.dequeue(), await worker.dequeue()
        assert acked is not None
        assert nacked is not None
        assert dead is not None
        results: dict[str, Any] = {}

        async def record(name: str, call: Any) -> None:
            results[name] = await call

        async with anyio.create_task_group() as tg:
            tg.start_soon(stall, server, 1.6)
            await anyio.sleep(0.1)  # the server is frozen now
            tg.start_soon(record, "ack", worker.ack(acked))
            tg.start_soon(record, "nack", worker.nack(nacked, requeue=True))
            tg.start_soon(record, "dead", worker.nack(dead, requeue=False))
            tg.start_soon(record, "enqueue", producer.enqueue(Job(id="new", payload=9)))
            tg.start_soon(record, "dequeue", worker.dequeue_many(DequeueOptions(count=1)))
        assert results["ack"] is None
        assert results["nack"] is None
        assert results["dead"] is None
        assert results["enqueue"] is True, "the job was stored by this call"
        taken = results["dequeue"]
        assert len(taken) == 1
        assert len(await layout.in_flight(producer)) == 1, "one dequeue call, one lease"
        jobs = await producer.get_jobs([acked.id, nacked.id, dead.id, "new"])
        states = {j.id: j for j in jobs if j}
        assert acked.id not in states
        assert states[dead.id].state == JobState.DEAD
        assert await layout.dead(producer) == 1
        assert states[nacked.id].retry_count == 1, "one nack, one retry"
        if (counters := await layout.counters(producer)) is not None:
            assert counters["acked"] == 1
            assert counters["nacked"] == 2
            assert counters["enqueued"] == 5
        else:
            assert await producer.length() == 2, "s3 or new is leased, the other and the nacked one wait"
    finally:
        await worker.aclose()
        await producer.aclose()


async def test_a_job_enqueued_during_a_stall_reaches_a_waiting_consumer_once(
    layout: Layout, redis_server_factory: Any
) -> None:
    server = redis_server_factory()
    worker, producer = await backend_on(layout, server.url), await backend_on(layout, server.url)
    delivered: list[str] = []
    try:

        async def consume() -> None:
            with anyio.move_on_after(8):
                while len(delivered) < 1:
                    got = await worker.dequeue(DequeueOptions(timeout=1.0))
                    if got is not None:
                        delivered.append(got.id)
                        await worker.ack(got)
            # anything delivered twice would show up now
            while extra := await worker.dequeue(DequeueOptions(timeout=0.3)):
                delivered.append(extra.id)
                await worker.ack(extra)

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.sleep(0.2)
            tg.start_soon(stall, server, 1.6)
            await anyio.sleep(0.1)
            assert await producer.enqueue(Job(id="during", payload=1)) is True
        assert Counter(delivered) == {"during": 1}
        assert await layout.stored(producer) == 0
        assert await producer.get_jobs(["during"]) == [None]
        if (counters := await layout.counters(producer)) is not None:
            assert counters["acked"] == 1
    finally:
        await worker.aclose()
        await producer.aclose()

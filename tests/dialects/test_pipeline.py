"""``pipeline_size`` bounds the commands sent per round trip, counted on the real server.

On a server of its own, two counters of ``INFO`` tell what reached it: ``cmdstat_evalsha``
(script invocations) and ``total_reads_processed`` (read events: one per round trip of a
small pipeline; the observer's own INFO adds one). With ``batch_size`` 2 (jobs per script)
and ``pipeline_size`` 3 (scripts per round trip), 12 jobs are 6 scripts in 2 round trips.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable
from typing import Any

import pytest

from queuestore import DequeueOptions, Job, JobState
from tests.servers import RedisServer, ServerFactory

from .conftest import Maker

pytestmark = pytest.mark.anyio


class Counters:
    """Deltas of evalsha calls and read events on one server, seen from a separate connection."""

    def __init__(self, server: RedisServer) -> None:
        self.r = server.sync_client()
        self.evalsha, self.reads = self._now()

    def _now(self) -> tuple[int, int]:
        info = self.r.info("everything")
        return int(info.get("cmdstat_evalsha", {}).get("calls", 0)), int(info["total_reads_processed"])

    async def measure(self, op: Awaitable[Any]) -> tuple[Any, int, int]:
        """(result, evalsha calls, round trips) of one operation."""
        self.evalsha, self.reads = self._now()
        result = await op
        evalsha, reads = self._now()
        return result, evalsha - self.evalsha, reads - self.reads - 1  # minus this INFO's own read


@pytest.mark.parametrize("backend_type", ["keydb", "dragonfly"])
async def test_pipeline_size_bounds_round_trips(
    make: Maker, redis_server_factory: ServerFactory, backend_type: str
) -> None:
    server = redis_server_factory()
    backend = await make(backend_type, server.url, batch_size=2, pipeline_size=3, compression=False)
    c = Counters(server)
    _, evalsha, trips = await c.measure(backend.length())  # calibration: one script, one trip
    assert (evalsha, trips) == (1, 1)

    jobs = [Job(payload=i) for i in range(12)]
    result, evalsha, trips = await c.measure(backend.enqueue_many(jobs))
    assert result == [True] * 12
    assert (evalsha, trips) == (6, 2)

    got, evalsha, trips = await c.measure(backend.dequeue_many(DequeueOptions(count=12)))
    assert len(got) == 12
    assert (evalsha, trips) == (1, 1)  # one script leases them all

    acked, evalsha, trips = await c.measure(backend.ack_many(got[:7]))
    assert acked == [True] * 7
    assert (evalsha, trips) == (4, 2)  # ceil(7 / 2) scripts, 3 + 1 per trip

    imported = [Job(payload=i, state=JobState.READY) for i in range(20)]
    _, evalsha, trips = await c.measure(backend.import_jobs(imported))  # a migration's copy step
    assert (evalsha, trips) == (10, math.ceil(10 / 3))

    held = await backend.migration_hold("m1", JobState.READY, 20)
    assert len(held) == 20
    n, evalsha, trips = await c.measure(backend.migration_release("m1", [j.id for j in held]))
    assert n == 20
    assert (evalsha, trips) == (10, math.ceil(10 / 3))


async def test_seed_default_pipeline_size_and_streams_layout(
    make: Maker, redis_server_factory: ServerFactory
) -> None:
    """With the defaults (batch_size 100, pipeline_size = batch_size), 1000 jobs are 10 scripts
    in one round trip; the streams layout sends a whole batch as one script."""
    server = redis_server_factory()
    lists = await make("keydb", server.url)
    assert lists.options.pipeline_size == 100
    c = Counters(server)
    _, evalsha, trips = await c.measure(lists.enqueue_many([Job(payload=i) for i in range(1000)]))
    assert evalsha == 10
    assert trips >= 1  # a 1000-job pipeline is larger than one socket read: counted in reads
    streams = await make("dragonfly", server.url, layout="streams")
    assert streams.options.pipeline_size == 200
    _, evalsha, trips = await c.measure(streams.enqueue_many([Job(payload=i) for i in range(50)]))
    assert (evalsha, trips) == (1, 1)

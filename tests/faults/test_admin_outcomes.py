"""Truthful outcomes of the operator calls, on both Redis layouts: a redrive, purge or delete
whose reply was lost after the server ran it (swallowed, or the connection reset) is re-sent with
the same call id and reports what the first run did -- never zero because the re-send found
nothing left to do, never twice the effect. Checked against the server's state, job by job."""

from __future__ import annotations

from typing import Any

import pytest

from queuestore import ALL, Job, JobState, LeaseLostError

from .conftest import Maker, pair
from .layouts import Layout
from .proxy import Fault, FaultProxy

pytestmark = pytest.mark.anyio

KINDS = ["drop", "reset"]


def arm(proxy: FaultProxy, layout: Layout, backend: Any, kind: str, op: str) -> Fault:
    match = layout.call(backend, op)
    return proxy.drop_reply(match) if kind == "drop" else proxy.reset_after(match)


async def states(direct: Any, ids: list[str]) -> list[JobState | None]:
    return [None if j is None else j.state for j in await direct.get_jobs(ids)]


async def dead_jobs(direct: Any, n: int) -> list[str]:
    ids = [f"x{i}" for i in range(n)]
    await direct.enqueue_many([Job(id=i, payload=i, max_retries=0) for i in ids])
    for _ in ids:
        got = await direct.dequeue()
        assert got is not None
        await direct.nack(got, requeue=False, error="poison")
    return ids


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("which", ["ids", "all"])
async def test_redrive(backends: Maker, layout: Layout, proxy: FaultProxy, kind: str, which: str) -> None:
    b, direct = await pair(backends)
    ids = await dead_jobs(direct, 3)
    fault = arm(proxy, layout, b, kind, "redrive")
    assert await b.redrive(ids if which == "ids" else ALL) == 3, "what the first run did"
    assert fault.hits == 1
    assert await states(direct, ids) == [JobState.READY] * 3
    assert await layout.stored(direct) == 3, "one ready entry each"
    assert await b.redrive(ALL) == 0


@pytest.mark.parametrize("kind", KINDS)
async def test_redrive_to_another_queue(
    backends: Maker, layout: Layout, proxy: FaultProxy, kind: str
) -> None:
    b, direct = await pair(backends)
    target = await backends(via_proxy=False, queue="q-again")
    ids = await dead_jobs(direct, 2)
    fault = arm(proxy, layout, b, kind, "redrive_to")
    assert await b.redrive([ids[0]], to_queue="q-again") == 1
    assert fault.hits == 1
    assert await states(direct, ids) == [None, JobState.DEAD]
    assert await states(target, ids) == [JobState.READY, None]
    assert await target.length() == 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("which", ["ids", "all"])
async def test_purge(backends: Maker, layout: Layout, proxy: FaultProxy, kind: str, which: str) -> None:
    b, direct = await pair(backends)
    ids = [f"r{i}" for i in range(4)]
    await direct.enqueue_many([Job(id=i, payload=i) for i in ids])
    fault = arm(proxy, layout, b, kind, "purge")
    assert await b.purge(JobState.READY, ids[:3] if which == "ids" else ALL) == (3 if which == "ids" else 4)
    assert fault.hits == 1
    left = [JobState.READY] if which == "ids" else [None]
    assert await states(direct, ids) == [None, None, None, *left]


@pytest.mark.parametrize("kind", KINDS)
async def test_delete(backends: Maker, layout: Layout, proxy: FaultProxy, kind: str) -> None:
    b, direct = await pair(backends)
    await direct.enqueue(Job(id="d1", payload=1))
    held = await direct.dequeue()
    assert held is not None
    fault = arm(proxy, layout, b, kind, "delete")
    assert await b.delete("d1") is True, "this call deleted it"
    assert fault.hits == 1
    assert await states(direct, ["d1"]) == [None]
    assert (await direct.stats()).in_flight == 0
    with pytest.raises(LeaseLostError):
        await direct.ack(held)

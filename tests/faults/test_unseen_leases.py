"""A lease no caller saw costs no attempt, on both Redis layouts: a dequeue whose lease script's
reply is lost even to its retries (``OutcomeUnknownError``) hands back, by the script's call id,
what that script leased -- the jobs are ready again with their attempt counts as before, and a
lease script that reaches the server after the hand-back leases nothing."""

from __future__ import annotations

import pytest

from queuestore import DequeueOptions, Job, JobState, OutcomeUnknownError

from .conftest import Maker, pair
from .layouts import Layout
from .proxy import Fault, FaultProxy

pytestmark = pytest.mark.anyio

KINDS = ["drop", "reset"]


def arm(proxy: FaultProxy, layout: Layout, backend: object, kind: str) -> Fault:
    match = layout.call(backend, "dequeue")  # type: ignore[arg-type]
    return proxy.drop_reply(match) if kind == "drop" else proxy.reset_after(match)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_dequeue_with_an_unknown_outcome_hands_its_job_back(
    backends: Maker, layout: Layout, proxy: FaultProxy, kind: str
) -> None:
    b, direct = await pair(backends, max_retries=0, visibility_timeout=0.5)
    await direct.enqueue(Job(id="u1", payload=1, max_retries=0))
    fault = arm(proxy, layout, b, kind)
    with pytest.raises(OutcomeUnknownError):
        await b.dequeue()
    assert fault.hits == 1
    assert await layout.in_flight(direct) == [], "nobody holds the job no caller saw"
    assert (await direct.get_jobs(["u1"]))[0].state == JobState.READY
    got = await direct.dequeue()
    assert got is not None
    assert (got.id, got.attempt, got.retry_count) == ("u1", 1, 0), "handed back, no attempt counted"
    assert await layout.dead(direct) == 0, "max_retries=0 did not bury it for an unseen lease"
    await direct.ack(got)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_dequeue_many_with_an_unknown_outcome_hands_every_job_back(
    backends: Maker, layout: Layout, proxy: FaultProxy, kind: str
) -> None:
    b, direct = await pair(backends, max_retries=0)
    await direct.enqueue_many([Job(id=f"m{i}", payload=i) for i in range(4)])
    arm(proxy, layout, b, kind)
    with pytest.raises(OutcomeUnknownError):
        await b.dequeue_many(DequeueOptions(count=3))
    assert await layout.in_flight(direct) == []
    got = await direct.dequeue_many(DequeueOptions(count=4))
    assert sorted((j.id, j.attempt) for j in got) == [(f"m{i}", 1) for i in range(4)]
    assert await direct.ack_many(got) == [True] * 4

"""A job moved back and forth between queues on different cluster slots (move to the DLQ,
redrive, fails again, move to the DLQ, ...) is neither lost nor duplicated on any round."""

from __future__ import annotations

import pytest

from queuestore import DequeueOptions, Job

from .conftest import ClusterMaker

pytestmark = pytest.mark.anyio

TYPES = ["redis-lists", "redis-streams"]


@pytest.mark.parametrize("type_", TYPES)
async def test_a_job_moved_a_b_a_b_five_times_across_slots_is_never_lost(
    on_cluster: ClusterMaker, type_: str
) -> None:
    main_q, dlq = on_cluster.queues_on_distinct_nodes(2)
    main = await on_cluster(type_, main_q)
    dead = await on_cluster(type_, dlq)
    await main.enqueue(Job(id="cyc", payload={"n": 1}, max_retries=100))
    for round_ in range(5):
        got = await main.dequeue(DequeueOptions(timeout=1))
        assert got is not None, f"round {round_}: the job is not in {main_q}"
        assert got.id == "cyc"
        await main.move(got, dlq)  # the worker gives up: to the dead-letter queue
        assert (await main.length(), await dead.length()) == (0, 1), f"round {round_}: after the move"
        back = await dead.dequeue(DequeueOptions(timeout=1))
        assert back is not None, f"round {round_}: the job is not in {dlq}"
        assert back.id == "cyc"
        await dead.move(back, main_q)  # an operator redrives it
        assert (await main.length(), await dead.length()) == (1, 0), f"round {round_}: after the redrive"
    final = await main.dequeue(DequeueOptions(timeout=1))
    assert final is not None
    assert final.id == "cyc"
    await main.ack(final)
    assert (await main.length(), await dead.length()) == (0, 0)

"""The batch drain's scripts take shortcuts that must not change an outcome: the ack compares
a guarded lease with the header its holder got (and falls back to the token when that header
was altered), replies with its statuses as one string, and the take writes token numbers from
a table up to ``NTH_MAX`` and numbers past it as before."""

from __future__ import annotations

import msgspec
import pytest

from queuestore import DequeueOptions, Job, JobState, LeaseLostError
from queuestore.backends.redis_lists.layout import NTH_MAX, ack_ref, status_codes
from queuestore.errors import SerializationError

from .conftest import Maker

pytestmark = pytest.mark.anyio


async def test_an_ack_whose_header_was_altered_is_checked_by_its_token(lists: Maker) -> None:
    b = await lists()
    assert await b.enqueue_many([Job(id=f"a{i}") for i in range(4)]) == [True] * 4
    got = await b.dequeue_many(DequeueOptions(count=4))
    assert [j.attempt for j in got] == [1] * 4
    renumbered = msgspec.structs.replace(got[0], attempt=7)  # the holder's own lease: acked
    not_a_number = msgspec.structs.replace(got[1], attempt="x")
    assert ack_ref(not_a_number)[1] == f"i||{got[1].lease_token}|"
    barred = msgspec.structs.replace(got[2], lease_token=f"{got[2].lease_token}|{got[2].started_at!r}")
    assert ack_ref(barred)[1] == f"i||{barred.lease_token}|"  # never the record's header
    stale = msgspec.structs.replace(got[3], attempt=7, lease_token=f"{got[3].lease_token}0")
    assert await b.ack_many([renumbered, not_a_number, barred, stale]) == [True, True, False, False]
    with pytest.raises(LeaseLostError):
        await b.ack(barred)
    await b.ack(got[2])
    await b.ack(got[3].id)  # a bare id: the current lease
    assert (await b.stats()).in_flight == 0


async def test_an_ack_after_an_extension_matches_the_header(lists: Maker) -> None:
    b = await lists()
    await b.enqueue(Job(id="x"))
    got = await b.dequeue()
    assert got is not None
    await b.extend_lease(got, 60.0)  # the deadline after the header changes, not the header
    assert await b.ack_many([got]) == [True]


async def test_statuses_read_back_from_one_string() -> None:
    assert status_codes(b"#10LN") == [1, 0, -1, -2]
    assert status_codes(b"#") == []
    with pytest.raises(SerializationError):
        status_codes(b"#1?")
    with pytest.raises(SerializationError):
        status_codes([1, 0])  # type: ignore[arg-type]


async def test_a_take_past_the_written_out_numbers_numbers_every_lease(lists: Maker) -> None:
    b = await lists()
    n = NTH_MAX + 30
    assert await b.enqueue_many([Job(id=f"j{i:04}") for i in range(n)]) == [True] * n
    got = await b.dequeue_many(DequeueOptions(count=n))
    assert [j.id for j in got] == [f"j{i:04}" for i in range(n)]
    tokens = [j.lease_token or "" for j in got]
    prefix = tokens[0][: -len("1")]
    assert tokens == [f"{prefix}{k}" for k in range(1, n + 1)]
    assert all(j.state is JobState.IN_FLIGHT and j.attempt == 1 for j in got)
    assert await b.ack_many(got) == [True] * n
    assert await b.length() == 0


async def test_a_retried_job_is_leased_by_its_whole_header(lists: Maker) -> None:
    b = await lists()
    assert await b.enqueue_many([Job(id="r1", max_retries=3), Job(id="r2")]) == [True, True]
    first = await b.dequeue()
    assert first is not None
    assert first.id == "r1"
    await b.nack(first)  # ready again, attempt 1 and started_at kept in its header
    got = await b.dequeue_many(DequeueOptions(count=2))
    assert [(j.id, j.attempt, j.retry_count) for j in got] == [("r2", 1, 0), ("r1", 2, 1)]
    assert await b.ack_many(got) == [True, True]


@pytest.mark.parametrize("others", [2, 40])  # a small lease set, and a skiplist
async def test_an_id_listed_twice_is_leased_once_per_take(lists: Maker, others: int) -> None:
    b = await lists()
    ids = ["a", "x", *(f"o{i:02}" for i in range(others))]
    assert await b.enqueue_many([Job(id=i) for i in ids]) == [True] * len(ids)
    assert await b.delete("x")  # its entry stays in the list, counted stale
    assert await b.enqueue(Job(id="x"))  # a second entry for the id, at the tail
    got = await b.dequeue_many(DequeueOptions(count=100))
    assert [j.id for j in got] == ids, "x at its old entry's position, once"
    tokens = [j.lease_token or "" for j in got]
    prefix = tokens[0][: -len("1")]
    assert tokens == [f"{prefix}{k}" for k in range(1, len(ids) + 1)], "the leases after it renumbered"
    assert await b.ack_many(got) == [True] * len(ids)
    assert await b.length() == 0
    assert (await b.stats()).in_flight == 0
    assert await b.dequeue_many(DequeueOptions(count=10)) == []


async def test_a_drain_past_what_lua_unpacks_at_once(lists: Maker) -> None:
    n = 9000  # a Lua unpack of more than about 8000 values fails: the scripts go in chunks
    b = await lists(batch_size=n)
    assert await b.enqueue_many([Job(id=f"k{i:05}") for i in range(n)]) == [True] * n
    got = await b.dequeue_many(DequeueOptions(count=n))
    assert [j.id for j in got] == [f"k{i:05}" for i in range(n)]
    assert len({j.lease_token for j in got}) == n
    assert await b.ack_many(got) == [True] * n
    assert await b.length() == 0
    assert (await b.stats()).in_flight == 0

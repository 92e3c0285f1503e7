"""The shape of the memory backend's costs, checked by counting, never by timing.

``Index.work`` counts the entry slots that edits move or copy. A dequeue used to
delete the head of one flat sorted list, moving every entry behind it (O(depth)
per job); now each operation's work is bounded by the chunk size, whatever the
depth. A differential test keeps the chunked index exactly equal to a plain
sorted list under random edits, pages and cursors.
"""

from __future__ import annotations

import bisect
import random

import pytest

from queuestore import BackendConfig, DequeueOptions, IterOptions, Job, JobState
from queuestore.backends.memory import (
    MemoryBackend,
    MemoryBackendFactory,
    drop_namespace,
    get_namespace,
    unique_namespace,
)
from queuestore.backends.memory.index import DEFAULT_LOAD, Entry, Index, Position

#: the most one head pop or tail append may move: one chunk (at most 2 * load entries)
PER_OP = 2 * DEFAULT_LOAD


def drain_work(depth: int) -> tuple[int, int]:
    """Fill an index like a ready queue (10 priorities), pop it empty; (total work, last pop's work)."""
    index = Index()
    for seq in range(depth):
        index.add(-float(seq % 10), seq, f"j{seq}")
    index.work = 0
    last = 0
    while (entry := index.first()) is not None:
        before = index.work
        index.remove(*entry)
        last = index.work - before
    return index.work, last


def test_dequeuing_from_a_deep_index_touches_a_bounded_number_of_entries() -> None:
    total_small, _ = drain_work(2_000)
    total, last = drain_work(200_000)
    # a flat list moved ~depth/2 entries per pop: 10**10 in all at 200,000
    assert last <= PER_OP
    assert total <= PER_OP * 200_000
    # per job, a deep queue costs what a shallow one does (not 100x as much)
    assert total / 200_000 <= 1.5 * (total_small / 2_000) + 8


def test_the_head_of_a_deep_index_is_popped_without_moving_the_rest() -> None:
    index = Index()
    for seq in range(200_000):
        index.add(0.0, seq, f"j{seq}")
    index.work = 0
    index.remove(0.0, 0, "j0")  # a flat list moved the 199,999 entries behind it
    assert index.work <= PER_OP
    for seq in range(1, 199_999):  # all but the last
        index.remove(0.0, seq, f"j{seq}")
    index.work = 0
    index.remove(0.0, 199_999, "j199999")  # the last of 200,000
    assert index.work <= 1
    assert len(index) == 0
    assert index.first() is None


def test_a_due_sweep_moves_only_the_due_prefix() -> None:
    index = Index()
    for seq in range(200_000):
        index.add(float(seq), seq, f"j{seq}")
    index.work = 0
    assert [e[1] for e in index.due(4.0)] == [0, 1, 2, 3, 4]
    assert index.work <= PER_OP
    assert len(index) == 199_995


def test_removing_in_the_middle_and_inserting_ahead_are_bounded_too() -> None:
    index = Index()
    for seq in range(200_000):
        index.add(0.0, seq, f"j{seq}")
    index.work = 0
    index.remove(0.0, 100_000, "j100000")  # an ack out of order, a move, a hold
    index.add(-9.0, 200_000, "urgent")  # a priority-9 job ahead of 199,999 others
    assert index.work <= 2 * PER_OP
    assert index.first() == (-9.0, 200_000, "urgent")


def _page_ref(items: list[Entry], after: Position | None, count: int, reverse: bool) -> list[Entry]:
    pos = [(e[0], e[1]) for e in items]
    if not reverse:
        start = 0 if after is None else bisect.bisect_right(pos, after)
        return items[start : start + count]
    end = len(items) if after is None else bisect.bisect_left(pos, after)
    return items[max(0, end - count) : end][::-1]


@pytest.mark.parametrize("seed", range(6))
def test_the_chunked_index_behaves_as_one_sorted_list(seed: int) -> None:
    rng = random.Random(seed)
    index, ref = Index(load=rng.choice([2, 3, 4, 8])), []
    seq = 0
    for _ in range(4_000):
        op = rng.random()
        if op < 0.45 or not ref:
            seq += 1
            rank = float(rng.choice([0, 0, 1, 2, rng.randint(0, 50)]))
            if rng.random() < 0.3:  # a restore or extend: an old seq comes back
                seq_used = rng.randint(-10_000, seq)
                if any(e[1] == seq_used for e in ref):
                    seq_used = seq
            else:
                seq_used = seq
            entry = (rank, seq_used, f"j{seq_used}")
            index.add(*entry)
            bisect.insort(ref, entry)
        elif op < 0.75:
            entry = ref.pop(0 if rng.random() < 0.5 else rng.randrange(len(ref)))
            index.remove(*entry)
        elif op < 0.8:
            now = float(rng.randint(-1, 20))
            cut = bisect.bisect_right([e[0] for e in ref], now)
            assert index.due(now) == ref[:cut]
            del ref[:cut]
        else:
            count, reverse = rng.randint(1, 12), rng.random() < 0.5
            after: Position | None = None
            if ref and rng.random() < 0.8:
                e = rng.choice(ref)
                after = (e[0], e[1] + rng.choice([-1, 0, 1]))
            assert index.page(after, count, reverse) == _page_ref(ref, after, count, reverse)
            offset = rng.randint(0, len(ref) + 1)
            assert index.at(offset) == (ref[offset] if offset < len(ref) else None)
            assert index.head(count) == ref[:count]
        assert len(index) == len(ref)
        assert index.first() == (ref[0] if ref else None)
    assert list(index) == ref
    with pytest.raises(KeyError):
        index.remove(1e9, -1, "absent")


@pytest.mark.anyio
async def test_a_deep_queue_dequeues_and_acks_at_a_bounded_cost_per_job() -> None:
    name = unique_namespace("perfshape")
    try:
        backend = await MemoryBackendFactory().create(
            BackendConfig(type="memory", queue="q", options={"namespace": name})
        )
        depth = 20_000
        for start in range(0, depth, 1_000):
            await backend.enqueue_many([Job(payload=i, priority=i % 10) for i in range(start, start + 1_000)])
        q = get_namespace(name).queue("q")
        indexes = [*q.index.values(), q.ttl]
        for index in indexes:
            index.work = 0
        priorities: list[int] = []
        while jobs := await backend.dequeue_many(DequeueOptions(count=100, timeout=0)):
            priorities.extend(job.priority for job in jobs)
            assert all(await backend.ack_many(jobs))
        assert priorities == sorted(priorities, reverse=True)
        assert len(priorities) == depth
        # a flat list: ~depth/2 entries moved per dequeue (10,000 here); now at most a chunk
        # per head pop (dequeue, then ack of the oldest lease) and per tail append
        assert sum(index.work for index in indexes) <= 2 * PER_OP * depth
        assert len(q.jobs) == 0
    finally:
        drop_namespace(name)


@pytest.mark.anyio
async def test_order_and_pages_hold_across_many_chunks() -> None:
    name = unique_namespace("perfshape")
    try:
        backend: MemoryBackend = await MemoryBackendFactory().create(
            BackendConfig(type="memory", queue="q", options={"namespace": name})
        )
        rng = random.Random(7)
        jobs = [Job(payload=i, priority=rng.randint(0, 9)) for i in range(3 * 2 * DEFAULT_LOAD + 17)]
        await backend.enqueue_many(jobs)
        expected = [j.id for j in sorted(jobs, key=lambda j: -j.priority)]  # stable: FIFO within
        walked = [j.id async for j in backend.iter(IterOptions(count=37, states=(JobState.READY,)))]
        assert walked == expected
        backwards = [
            j.id async for j in backend.iter(IterOptions(count=41, reverse=True, states=(JobState.READY,)))
        ]
        assert backwards == expected[::-1]
        middle = expected[len(expected) // 2]
        from_middle = [
            j.id async for j in backend.iter(IterOptions(count=50, start_id=middle, states=(JobState.READY,)))
        ]
        assert from_middle == expected[len(expected) // 2 :]
        for offset in (0, 1, DEFAULT_LOAD * 2 + 3, len(expected) - 1):
            peeked = await backend.peek(offset)
            assert peeked is not None
            assert peeked.id == expected[offset]
        got = [j.id for j in await backend.dequeue_many(DequeueOptions(count=len(jobs), timeout=0))]
        assert got == expected
    finally:
        drop_namespace(name)

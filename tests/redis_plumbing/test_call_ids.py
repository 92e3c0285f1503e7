"""Call ids: 64 random bits from the OS drawn per id and a per-process counter, never repeated,
and different in processes that share one memory image (a forked child, or copies restored
from one snapshot, which run no fork hooks)."""

from __future__ import annotations

import copy
import multiprocessing
import os

import pytest

from queuestore.backends._redis.calls import CallIds, new_call_id
from queuestore.backends.redis_lists.context import call_id as lists_call_id
from queuestore.backends.redis_streams.layout import call_id as streams_call_id


def test_ids_never_repeat_and_draw_their_random_part_each() -> None:
    ids = [new_call_id() for _ in range(10_000)] + [lists_call_id(), streams_call_id()]
    assert len(set(ids)) == len(ids)
    assert len({i[:16] for i in ids}) == len(ids)  # no shared prefix to copy
    assert all(set(i) <= set("0123456789abcdef") for i in ids)


def test_copies_of_one_state_hand_out_ids_of_their_own() -> None:
    """A process restored twice from one snapshot: both copies hold the same counter, and must
    still not hand out the same ids (one copy's retry would get the other's recorded reply)."""
    ids = CallIds()
    ids.new()
    restored = [copy.deepcopy(ids) for _ in range(2)]
    a = [restored[0].new() for _ in range(100)]
    b = [restored[1].new() for _ in range(100)]
    assert not set(a) & set(b)


def test_the_pruning_turn_keeps_its_rate() -> None:
    """The scripts prune old call records on about one call in 8, picked by the last two
    characters of the call id."""
    ids = [new_call_id() for _ in range(80_000)]
    turns = sum((ord(i[-1]) + ord(i[-2])) % 8 == 0 for i in ids) / len(ids)
    assert 0.09 < turns < 0.16


def _child(conn: object) -> None:
    conn.send([new_call_id() for _ in range(3)])  # type: ignore[attr-defined]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_hands_out_ids_of_its_own() -> None:
    mine = [new_call_id() for _ in range(3)]
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_child, args=(child,))
    p.start()
    theirs = parent.recv()
    p.join(10)
    assert p.exitcode == 0
    assert not set(theirs) & set(mine + [new_call_id() for _ in range(3)])

"""Call ids: a per-process random prefix and a counter, never repeated, drawn again in a
forked child (two processes that share a parent's state must not hand out the same ids)."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from queuestore.backends._redis.calls import CallIds, new_call_id
from queuestore.backends.redis_lists.context import call_id as lists_call_id
from queuestore.backends.redis_streams.layout import call_id as streams_call_id


def test_ids_never_repeat_and_share_the_process_prefix() -> None:
    ids = [new_call_id() for _ in range(10_000)] + [lists_call_id(), streams_call_id()]
    assert len(set(ids)) == len(ids)
    assert {i[:16] for i in ids} == {ids[0][:16]}
    assert all(set(i) <= set("0123456789abcdef") for i in ids)


def test_a_reseed_draws_a_new_prefix() -> None:
    ids = CallIds()
    first = ids.new()
    ids.reseed()
    assert ids.new()[:16] != first[:16]


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
    assert {i[:16] for i in theirs} != {i[:16] for i in mine}
    assert not set(theirs) & set(mine + [new_call_id() for _ in range(3)])

"""Call records are forgotten once their reply came back: a drained queue keeps a bounded
handful of them (a batch of received ones, and the last call's), not one per call of the drain,
and none after a maintenance sweep; on both Redis layouts, standalone and cluster (real
servers)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from queuestore import BackendConfig, DequeueOptions, Job, QueueBackend, default_registry
from queuestore.backends._redis.calls import FORGET_BATCH, FORGET_MAX, CallLog
from queuestore.backends.redis_lists.layout import KEY_SUFFIXES

N, ROUND, BATCH = 1200, 300, 100

PARAMS = [
    pytest.param(("redis-lists", "standalone"), id="lists-standalone"),
    pytest.param(("redis-streams", "standalone"), id="streams-standalone"),
    pytest.param(("redis-lists", "cluster"), id="lists-cluster", marks=pytest.mark.cluster),
    pytest.param(("redis-streams", "cluster"), id="streams-cluster", marks=pytest.mark.cluster),
]


@pytest.fixture(params=PARAMS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[QueueBackend]:
    kind, topology = request.param
    options: dict[str, Any] = {"key_prefix": f"qs-calls-{uuid.uuid4().hex[:10]}:"}
    if kind == "redis-lists":
        options["batch_size"] = BATCH  # jobs per script: several scripts per batch call
    if topology == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        url, addrs, options["strict_keys"] = cluster.url, list(cluster.startup_nodes), True
    else:
        url, addrs = request.getfixturevalue("redis_server").url, []
    config = BackendConfig(
        type=kind,
        name=f"calls-{kind}",
        url=url,
        queue=f"q-{uuid.uuid4().hex[:10]}",
        cluster_mode=topology == "cluster",
        cluster_addrs=addrs,
        options=options,
    )
    b: QueueBackend = await default_registry().factory(kind).create(config)
    try:
        yield b
    finally:
        await b.aclose()


async def records(b: Any) -> int:
    """How many call records the queue holds (the hash, checked against the times zset)."""
    if hasattr(b, "store"):  # redis-streams
        client, calls, times = b.store.conn.client, b.store.keys.calls, b.store.keys.calls_at
    else:
        block = b._ctx.block
        client = b._ctx.connection().client
        calls, times = block[KEY_SUFFIXES.index("calls")], block[KEY_SUFFIXES.index("calltimes")]
    n, m = int(await client.hlen(calls)), int(await client.zcard(times))
    assert n == m
    return n


async def sweep(b: Any) -> None:
    """One round of the backend's maintenance loop."""
    await (b.sweep() if hasattr(b, "store") else b.reclaim())


@pytest.mark.anyio
async def test_a_batch_drain_leaves_the_last_calls_records_then_none(backend: QueueBackend) -> None:
    jobs = [Job(payload=i) for i in range(N)]
    assert await backend.enqueue_many(jobs) == [True] * N
    got: list[Job] = []
    while len(got) < N:
        part = await backend.dequeue_many(DequeueOptions(count=ROUND))
        assert part
        assert await backend.ack_many(part) == [True] * len(part)
        got += part
    assert sorted(j.id for j in got) == sorted(j.id for j in jobs)
    # a batch of received calls and the last ack_many's own calls at most, where every call
    # of the drain used to stay
    assert await records(backend) < FORGET_BATCH + ROUND // BATCH
    await sweep(backend)
    assert await records(backend) == 0
    assert await backend.length() == 0


@pytest.mark.anyio
async def test_lone_dequeue_and_ack_leave_a_handful(backend: QueueBackend) -> None:
    assert await backend.enqueue_many([Job(payload=i) for i in range(150)]) == [True] * 150
    for _ in range(150):
        job = await backend.dequeue()
        assert job is not None
        await backend.ack(job)
    assert await backend.dequeue() is None
    assert await records(backend) <= FORGET_BATCH + 1
    await sweep(backend)
    assert await records(backend) == 0


@pytest.mark.anyio
async def test_lone_enqueues_leave_at_most_a_batch(backend: QueueBackend) -> None:
    for i in range(5 * FORGET_BATCH + 3):
        assert await backend.enqueue(Job(payload=i)) is True
        assert await records(backend) <= FORGET_BATCH + 1
    await sweep(backend)
    assert await records(backend) == 0


def test_received_ids_are_listed_a_batch_at_a_time() -> None:
    log = CallLog()
    for i in range(FORGET_BATCH):
        arg = log.arg(f"c{i}")
        assert arg == f"c{i}"  # fewer than a batch received so far
        log.settle([arg], ok=True)
    arg = log.arg("x")
    assert arg.split("|")[1].split(",") == [f"c{i}" for i in range(FORGET_BATCH)]
    log.settle([arg], ok=True)
    assert log.pending == 1  # "x" itself
    assert log.flush_arg() == "|x"  # the sweep lists however few


def test_a_call_is_listed_only_after_its_reply_came_back() -> None:
    log = CallLog(batch=1)
    first = log.arg("a")
    assert first == "a"
    lost = log.arg("b")
    log.settle([lost], ok=False)  # no reply: its record stays for the retries
    assert log.arg("c") == "c"
    log.settle(["c"], ok=True)  # after "a": arguments are told apart by their text
    assert log.pending == 1
    log.settle([first], ok=True)
    nxt = log.arg("d")
    assert nxt == "d|c,a"
    # a retry re-sends the same argument; only a call that got its reply drops what it listed
    log.settle([nxt], ok=False)
    assert log.arg("e") == "e|c,a"


def test_a_held_call_is_listed_once_released_and_a_list_is_bounded() -> None:
    log = CallLog(batch=1)
    held = log.arg("lease", held=True)
    log.settle([held], ok=True)
    assert log.pending == 0  # a hand-back may still read its record
    log.received("lease")
    concurrent = [log.arg(f"c{i}") for i in range(FORGET_MAX + 5)]  # each lists "lease"
    for arg in concurrent:
        log.settle([arg], ok=True)
    assert log.pending == FORGET_MAX + 5
    arg = log.arg("x")
    assert arg.startswith("x|")
    assert len(arg.split("|")[1].split(",")) == FORGET_MAX
    log.settle([arg], ok=True)
    assert log.pending == 6  # 69 received, 64 of them forgotten, then "x" itself
    flush = log.flush_arg()
    assert flush.startswith("|")
    log.settle([flush], ok=True)
    assert log.pending == 0
    assert log.flush_arg() == ""

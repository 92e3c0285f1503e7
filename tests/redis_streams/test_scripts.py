"""Scripts under strict keys, the XAUTOCLAIM parser on both reply shapes, orphans, garbage, options."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import pytest

from queuestore import (
    BackendConfig,
    ConfigurationError,
    DequeueOptions,
    IterOptions,
    Job,
    JobNotFoundError,
    JobState,
)
from queuestore.backends.redis_streams import RedisStreamsBackend, RedisStreamsFactory

from .conftest import Maker, unique

pytestmark = pytest.mark.anyio


async def _parse(backend: RedisStreamsBackend, reply: Any) -> Any:
    args = [*backend.store.take_args("parse", backend.group, backend.consumer, 1, 1.0), json.dumps(reply)]
    return await backend._script("test", "take", backend.skeys.core(), args)


async def test_xautoclaim_parser_takes_both_reply_shapes(make: Maker) -> None:
    backend = await make()
    redis7 = ["0-0", [["1-0", ["j", "a"]], ["2-0", ["j", "b"]]], ["3-0"]]
    keydb = ["5-0", [["1-0", ["j", "a"]], False, ["2-0", ["j", "b"]]]]
    justid = ["0-0", ["1-0", "2-0"], []]
    assert await _parse(backend, redis7) == [b"0-0", [b"1-0", b"2-0"], [b"3-0"], 0]
    assert await _parse(backend, keydb) == [b"5-0", [b"1-0", b"2-0"], [], 1]
    assert await _parse(backend, justid) == [b"0-0", [b"1-0", b"2-0"], [], 0]


async def test_every_streams_script_runs_under_strict_keys(make: Maker) -> None:
    backend = await make(visibility_timeout=0.3)
    assert backend.script_set.strict_keys
    await backend.enqueue(Job(id="a", payload=1))
    await backend.enqueue(Job(id="d", payload=2).delayed(30))
    got = await backend.dequeue()
    assert got is not None
    await backend.extend_lease(got, 5)
    await backend.nack(got, requeue=True, delay=0.05)
    await anyio.sleep(0.1)
    got = await backend.dequeue(DequeueOptions(timeout=1))
    assert got is not None
    await backend.move(got, unique("elsewhere"))
    held = await backend.migration_hold("m", JobState.DELAYED, 5)
    assert [j.id for j in held] == ["d"]
    assert await backend.migration_restore("m") == 1
    assert await backend.import_jobs([Job(id="dead", payload=0, state=JobState.DEAD)]) == [True]
    found = await backend.get_jobs(["a", "d", "dead", "never"])
    assert [j.state if j else None for j in found] == [None, JobState.DELAYED, JobState.DEAD, None]
    await backend.sweep()
    await _parse(backend, ["0-0", [], []])
    assert await backend.enqueue_many([Job(payload=i) for i in range(3)]) == [True] * 3
    batch = await backend.dequeue_many(DequeueOptions(count=3))  # one transaction
    assert len(batch) == 3
    assert await backend.ack_many(batch) == [True] * 3
    assert set(backend.script_set.scripts) <= set(backend.script_set.calls), backend.script_set.calls


async def test_entry_deleted_while_pending_is_counted_not_retried(make: Maker) -> None:
    backend = await make(visibility_timeout=0.2)
    await backend.enqueue(Job(id="gone", payload=1))
    got = await backend.dequeue()
    assert got is not None
    eid = got.lease_token.split("\x1f")[2] if got.lease_token else ""
    await backend.conn.client.xdel(backend.skeys.stream, eid)  # behind our back
    await anyio.sleep(0.3)
    assert await backend.dequeue() is None
    with pytest.raises(JobNotFoundError):
        await backend.ack(got)
    health = await backend.health()
    assert int(health.details["lost_entries"]) >= 1
    assert (await backend.stats()).in_flight == 0


async def test_orphaned_pending_entry_is_reclaimed_with_xautoclaim(make: Maker) -> None:
    backend = await make(claim_min_idle=0.2)
    await backend.enqueue(Job(id="orphan", payload=1))
    raw = backend.conn.client
    # something else reads the entry with our group: it is pending but has no lease record
    await raw.xreadgroup(backend.group, "foreign", {backend.skeys.stream: ">"}, count=1)
    assert await backend.dequeue() is None
    await anyio.sleep(0.3)
    got = await backend.dequeue(DequeueOptions(timeout=1))
    assert got is not None
    assert got.id == "orphan"
    assert got.retry_count == 1
    await backend.ack(got)


async def test_garbage_entry_is_dead_lettered_with_a_reason(make: Maker) -> None:
    backend = await make()
    raw = backend.conn.client
    await raw.xadd(backend.skeys.stream, {"j": "junk", "b": b"\xff\x00not a job"})
    await raw.xadd(backend.skeys.stream, {"what": "ever"})
    await backend.enqueue(Job(id="fine", payload=1))
    got = await backend.dequeue()
    assert got is not None
    assert got.id == "fine"
    dead = [j async for j in backend.iter(IterOptions(states=(JobState.DEAD,)))]
    assert len(dead) == 2
    assert all("undecodable" in (j.dead_reason or "") for j in dead)
    assert dead[0].id == "junk"


async def test_iter_skips_garbage_with_a_warning_and_a_count(
    make: Maker, caplog: pytest.LogCaptureFixture
) -> None:
    backend = await make()
    raw = backend.conn.client
    await backend.enqueue(Job(id="before", payload=1))
    bad_ready = (await raw.xadd(backend.skeys.stream, {"j": "junk", "b": b"\xff\x00not a job"})).decode()
    bad_dead = (await raw.xadd(backend.skeys.dead, {"what": "ever"})).decode()
    await backend.enqueue(Job(id="after", payload=2))
    assert (await backend.health()).details["corrupt_entries"] == "0"
    with caplog.at_level(logging.WARNING, logger="queuestore.backends.redis_streams"):
        got = [j async for j in backend.iter(IterOptions(states=(JobState.READY, JobState.DEAD)))]
    assert [j.id for j in got] == ["before", "after"]  # the reader keeps going past garbage
    warnings = [r.getMessage() for r in caplog.records if r.name == "queuestore.backends.redis_streams"]
    assert len(warnings) == 2, warnings
    assert f"entry {bad_ready} of {backend.skeys.stream}" in warnings[0]
    assert f"entry {bad_dead} of {backend.skeys.dead}" in warnings[1]
    assert all("does not decode" in w for w in warnings)
    assert backend.store.corrupt_entries == 2
    assert (await backend.health()).details["corrupt_entries"] == "2"
    # dequeue still dead-letters the ready garbage (and serves the good jobs around it)
    served = [await backend.dequeue(), await backend.dequeue()]
    assert [j.id for j in served if j is not None] == ["before", "after"]
    dead = [j async for j in backend.iter(IterOptions(states=(JobState.DEAD,)))]
    assert [j.id for j in dead] == ["junk"]
    assert backend.store.corrupt_entries == 3  # the planted dead garbage was skipped (and counted) again


def _cfg(**options: Any) -> BackendConfig:
    return BackendConfig(type="redis-streams", url="redis://127.0.0.1:1/0", queue="q", options=options)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"claim_min_idle": 5, "visibility_timeout": 7}, "options.claim_min_idle"),
        ({"claim_min_idle": 0}, "options.claim_min_idle"),
        ({"stream_name": "{other}"}, "options.stream_name"),
        ({"claim_count": 0}, "options.claim_count"),
        ({"max_length": -1}, "options.max_length"),
        ({"retention": "forever"}, "options.retention"),
        ({"no_such_option": 1}, "options.no_such_option"),
        ({"block_timeout": 0}, "options.block_timeout"),
    ],
)
def test_bad_options_are_named(options: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RedisStreamsFactory().validate(_cfg(**options))
    assert info.value.field == field


def test_alias_and_stream_name() -> None:
    f = RedisStreamsFactory()
    opts = f.parse(_cfg(visibility_timeout="2s", stream_name="jobs"))
    backend = RedisStreamsBackend(_cfg(), opts)
    assert backend.store.claim_min_idle == 2.0
    assert backend.skeys.stream == "queue:{q}:jobs"
    assert RedisStreamsBackend(_cfg(), f.parse(_cfg(claim_min_idle=3))).store.claim_min_idle == 3.0


async def test_an_ack_of_an_entry_deleted_while_pending_reports_not_found_and_counts_it(make: Maker) -> None:
    backend = await make()
    await backend.enqueue_many([Job(id="gone", payload=1), Job(id="kept", payload=2)])
    gone, kept = await backend.dequeue_many(DequeueOptions(count=2))
    eid = gone.lease_token.split("\x1f")[2] if gone.lease_token else ""
    await backend.conn.client.xdel(backend.skeys.stream, eid)  # behind our back, lease still held
    assert await backend.ack_many([gone, kept]) == [False, True]
    health = await backend.health()
    assert int(health.details["lost_entries"]) == 1
    assert (await backend.stats()).in_flight == 0
    assert await backend.get_jobs(["gone", "kept"]) == [None, None]

"""Strict keys in every dialect: each backend's every script runs under the key checker with
the header the probe picks for the server itself ("real": REDIS7 on Redis / Valkey 7+, NONE on
KeyDB) and with the headers of the servers it poses as (recorded INFO: NONE for KeyDB,
DRAGONFLY), chosen by the probe, not by the type name. This is the proof for Dragonfly's declared-keys rule.

The lists flow reuses ``tests/redis_lists/test_strict_scripts.py::exercise``; cross-slot moves
(move_out / move_in / move_done) need the real cluster. The streams flow mirrors
``tests/redis_streams/test_scripts.py::test_every_streams_script_runs_under_strict_keys``.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from typing import Any

import anyio
import pytest
from redis.crc import key_slot

from queuestore import (
    BackendConfig,
    DequeueOptions,
    Job,
    JobState,
    UnsupportedOperationError,
    default_registry,
)
from queuestore.backends._redis.scripts import ScriptHeader
from queuestore.backends.redis_lists import RedisListsBackend
from queuestore.backends.redis_streams import RedisStreamsBackend
from tests.redis_lists.test_strict_scripts import exercise
from tests.servers import RedisCluster, RedisServer

from .conftest import Maker, probed, unique

pytestmark = pytest.mark.anyio

#: (pose, header): "real" is the server itself (its probed header: REDIS7 on Redis / Valkey 7+,
#: NONE on KeyDB); the others pose as a recorded server on it
POSES = [
    pytest.param("real", None, id="real"),
    ("keydb", ScriptHeader.NONE),
    ("dragonfly", ScriptHeader.DRAGONFLY),
]
LABELS = {"keydb": "keydb 6.3.4", "dragonfly": "dragonfly 1.25.2"}


async def expected(
    pose_kind: str, header: ScriptHeader | None, server: RedisServer
) -> tuple[ScriptHeader, str]:
    """The script header and the health label a backend opened under ``pose_kind`` must report."""
    if pose_kind != "real":
        assert header is not None
        return header, LABELS[pose_kind]
    real = await probed(server.url)
    return real.script_header, real.label


async def lookup(backend: Any) -> None:
    """``get_jobs`` (its script, where the backend has one), on a stored and an unknown id."""
    with contextlib.suppress(UnsupportedOperationError):
        first = [j async for j in backend.iter()][:1]
        found = await backend.get_jobs([*(j.id for j in first), "no-such-id"])
        assert found[-1] is None


async def _cluster_pair(cluster: RedisCluster, backend_type: str, pose_kind: str) -> list[Any]:
    """Two lists-layout backends on queues owned by different cluster nodes."""
    prefix = unique("qs-dia-cl") + ":"
    names: dict[int, str] = {}
    while len(names) < 2:
        name = unique("q")
        names.setdefault(cluster.node_for_slot(key_slot(f"{prefix}{{{name}}}".encode())).port, name)
    out = []
    for name in names.values():
        cfg = BackendConfig(
            type=backend_type,
            name="strict-cluster",
            url=cluster.url,
            cluster_mode=True,
            cluster_addrs=list(cluster.startup_nodes),
            queue=name,
            options={"key_prefix": prefix, "strict_keys": True},
        )
        out.append(await default_registry().create(backend_type, cfg))
    return out


@pytest.mark.parametrize(("pose_kind", "header"), POSES)
@pytest.mark.parametrize("backend_type", ["redis-lists", "keydb", "dragonfly"])
async def test_lists_scripts_strict_in_every_dialect(
    make: Maker,
    pose: Any,
    redis_server: RedisServer,
    redis_cluster: RedisCluster,
    backend_type: str,
    pose_kind: str,
    header: ScriptHeader | None,
) -> None:
    pose(pose_kind)
    header, label = await expected(pose_kind, header, redis_server)
    standalone = await make(backend_type, redis_server.url, strict_keys=True)
    assert isinstance(standalone, RedisListsBackend)
    assert standalone.script_set.header is header  # follows the (posed) server, not the type
    assert standalone.script_set.strict_keys
    await exercise(standalone, unique("elsewhere"))
    await lookup(standalone)
    a, b = await _cluster_pair(redis_cluster, backend_type, pose_kind)
    try:
        await exercise(a, b.queue)
        calls = Counter(standalone.script_set.calls) + Counter(a.script_set.calls)
        assert not [n for n in RedisListsBackend.script_names if calls[n] == 0], calls
        health = await standalone.health()
        assert (health.server or "").startswith(label)
        assert health.details["configured_type"] == backend_type
        assert health.details["script_header"] == str(header)
    finally:
        await a.aclose()
        await b.aclose()


async def _parse(backend: RedisStreamsBackend, reply: Any) -> Any:
    """The streams Lua's XAUTOCLAIM parser (take.lua, mode "parse") on a reply."""
    args = [*backend.store.take_args("parse", backend.group, backend.consumer, 1, 1.0), json.dumps(reply)]
    return await backend._script("test", "take", backend.skeys.core(), args)


async def _sift_nothing(backend: RedisStreamsBackend) -> Any:
    """lease.lua's "sift" mode on no entries (where no take is one transaction, Dragonfly, the
    script runs nowhere else)."""
    args = ["sift", backend.group, "@none", "", 1000, 10, 10, backend.queue, 0]
    return await backend._script("test", "lease", backend.skeys.core(), args)


async def exercise_streams(backend: RedisStreamsBackend) -> None:
    await backend.enqueue(Job(id="a", payload=1))
    await backend.enqueue(Job(id="d", payload=2).delayed(30))
    assert await backend.enqueue_many([Job(id="b", payload=3), Job(id="c", payload=4)]) == [True, True]
    got = await backend.dequeue()
    assert got is not None
    await backend.extend_lease(got, 5)
    await backend.nack(got, requeue=True, delay=0.05)
    await anyio.sleep(0.1)
    many = await backend.dequeue_many(DequeueOptions(count=3, timeout=1))
    assert len(many) == 3
    assert await backend.ack_many(many[:1]) == [True]
    await backend.ack(many[1])
    await backend.move(many[2], unique("elsewhere"))
    held = await backend.migration_hold("m", JobState.DELAYED, 5)
    assert [j.id for j in held] == ["d"]
    assert await backend.migration_restore("m") == 1
    assert await backend.import_jobs([Job(id="dead", payload=0, state=JobState.DEAD)]) == [True]
    await backend.sweep()
    await _parse(backend, ["0-0", [], []])
    assert await _sift_nothing(backend) == []
    await backend.stats()
    await backend.health()
    await lookup(backend)


@pytest.mark.parametrize(("pose_kind", "header"), POSES)
@pytest.mark.parametrize("backend_type", ["redis-streams", "keydb", "dragonfly"])
async def test_streams_scripts_strict_in_every_dialect(
    make: Maker,
    pose: Any,
    redis_server: RedisServer,
    backend_type: str,
    pose_kind: str,
    header: ScriptHeader | None,
) -> None:
    pose(pose_kind)
    header, _ = await expected(pose_kind, header, redis_server)
    extra = {} if backend_type == "redis-streams" else {"layout": "streams"}
    backend = await make(backend_type, redis_server.url, strict_keys=True, visibility_timeout=0.3, **extra)
    assert isinstance(backend, RedisStreamsBackend)
    assert backend.script_set.header is header
    await exercise_streams(backend)
    assert set(backend.script_set.scripts) <= set(backend.script_set.calls), backend.script_set.calls

"""``wait_for_replicas`` / ``wait_for_fsync`` on real servers.

WAIT runs in the same pipeline, on the same connection, as the write it confirms: WAIT
counts the replicas that acknowledged *its connection's* writes. The proof: with the replica
frozen (SIGSTOP), a WAIT on the writing connection times out, while a WAIT on any other
connection (no writes of its own) would return at once.
"""

from __future__ import annotations

import time

import pytest
import redis.asyncio as aredis

from queuestore import BackendError, ConfigurationError, Job, OperationTimeoutError
from queuestore.backends._redis.probe import ServerInfo, probe_server
from tests.faults.proxy import FaultProxy
from tests.servers import RedisCluster, RedisServer, ServerFactory

from .conftest import Maker, config

pytestmark = pytest.mark.anyio


def with_replica(factory: ServerFactory) -> tuple[RedisServer, RedisServer]:
    primary = factory(extra_args=["--repl-diskless-sync-delay", "0"])  # the default waits 5 s
    replica = factory(extra_args=["--replicaof", primary.host, str(primary.port)])
    # synced and streaming: after a diskless sync the primary sends the replica nothing until
    # its first ACK (up to a second later), so a write is waited for until the replica has it
    client, deadline = primary.sync_client(), time.monotonic() + 10
    client.set("replica-probe", 1)
    while client.wait(1, 100) < 1:
        assert time.monotonic() < deadline, "the replica did not sync"
    return primary, replica


@pytest.mark.parametrize("layout", ["lists", "streams"])
async def test_wait_for_replicas_confirms_on_the_writing_connection(
    make: Maker, redis_server_factory: ServerFactory, layout: str
) -> None:
    primary, replica = with_replica(redis_server_factory)
    backend = await make("keydb", primary.url, layout=layout, wait_for_replicas=1, wait_timeout=0.3)
    r_primary, r_replica = primary.sync_client(), replica.sync_client()
    waits = int(r_primary.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))
    assert await backend.enqueue(Job(id="j1", payload=1))
    assert r_replica.exists(*[k for k in r_primary.keys(f"{backend.options.key_prefix}*")])  # already there
    got = await backend.dequeue()
    assert got is not None
    await backend.ack(got)
    after = int(r_primary.info("commandstats")["cmdstat_wait"]["calls"])
    assert after - waits == 2  # enqueue and ack; dequeue is not a durable op
    assert (await backend.health()).details["wait_for"] == "WAIT 1"
    r_primary.script_flush()  # NOSCRIPT inside the durable pipeline: re-sent with its body, waited for
    assert await backend.enqueue(Job(id="j0", payload=0))
    assert backend.script_set.reloads >= 1

    # frozen() returns once every thread of the replica is stopped: a multi-threaded server
    # (KeyDB) signalled with a bare SIGSTOP may still acknowledge a write sent right after
    with replica.frozen(), pytest.raises(OperationTimeoutError, match="acknowledged by 0 of 1 replicas"):
        await backend.enqueue(Job(id="j2", payload=2))
    # the write was applied on the primary: a retry is a no-op by id, and now confirmed
    assert await backend.enqueue(Job(id="j2", payload=2)) is False


@pytest.mark.parametrize("layout", ["lists", "streams"])
@pytest.mark.parametrize("op", ["enqueue", "ack"])
async def test_a_retried_durable_call_is_confirmed_only_when_replicated(
    make: Maker, redis_server_factory: ServerFactory, layout: str, op: str
) -> None:
    """The first reply of a durable call is lost after the server ran it (the connection is
    cut): the client re-sends it with its call id on a new connection, and the script answers
    from its record without writing again. WAIT there must still cover the first run's write:
    with the replica frozen, the call is a timeout, never reported confirmed. (Servers that
    move a connection's WAIT offset only when one of its own commands replicates, e.g.
    Valkey 9.1, answer a new connection's WAIT at once unless the retried script writes.)"""
    primary, replica = with_replica(redis_server_factory)
    async with FaultProxy(primary.host, primary.port) as proxy:
        backend = await make("keydb", proxy.url, layout=layout, wait_for_replicas=1, wait_timeout=0.3)
        names = {"enqueue": {"enqueue", "enqueue_one"}, "ack": {"ack", "settle"}}[op]
        shas = {backend.script_set.scripts[n].sha.encode() for n in names if n in backend.script_set.scripts}
        target = Job(id="j1", payload=1)
        call = backend.enqueue
        if op == "ack":
            assert await backend.enqueue(target)
            target = await backend.dequeue()
            assert target is not None
            call = backend.ack
        fault = proxy.reset_after(lambda args: args[0] == b"EVALSHA" and args[1] in shas)
        with replica.frozen(), pytest.raises(OperationTimeoutError, match="acknowledged by 0 of 1"):
            await call(target)
        assert fault.hits == 1
        # it ran once: the job is stored once (a retry of the enqueue is a no-op) or acked
        if op == "enqueue":
            assert await backend.length() == 1
            assert await backend.enqueue(target) is False
        else:
            assert await backend.length() == 0
            assert await backend.get_jobs(["j1"]) == [None]


async def test_wait_for_replicas_on_a_cluster_targets_the_queue_node(
    make: Maker, redis_cluster: RedisCluster
) -> None:
    """The cluster pipeline sends WAIT to the node of the queue's slot (it has no replica
    here, so WAIT times out: routed and answered, not refused)."""
    from queuestore import default_registry

    cfg = config("dragonfly", redis_cluster.url, wait_for_replicas=1, wait_timeout=0.05)
    cfg.cluster_mode, cfg.cluster_addrs = True, list(redis_cluster.startup_nodes)
    backend = await default_registry().create("dragonfly", cfg)
    try:
        with pytest.raises(OperationTimeoutError, match="0 of 1 replicas"):
            await backend.enqueue(Job(payload=1))
        assert await backend.length() == 1
    finally:
        await backend.aclose()


async def probed(server: RedisServer) -> ServerInfo:
    """What the probe finds on ``server`` (the branch the backends take there)."""
    client = aredis.Redis.from_url(server.url)
    try:
        return await probe_server(client)
    finally:
        await client.aclose()


def waitaof_calls(server: RedisServer) -> int:
    stats = server.sync_client().info("commandstats").get("cmdstat_waitaof", {})
    return int(stats.get("calls", 0))


async def test_wait_for_replicas_where_the_server_has_no_wait(
    make: Maker, redis_server_factory: ServerFactory
) -> None:
    """No WAIT (probed; Dragonfly before v1.40; here a server whose WAIT is renamed away):
    ``wait_for_replicas`` is refused at open, naming the option."""
    server = redis_server_factory(extra_args=["--rename-command", "WAIT", ""])
    assert not (await probed(server)).has_wait
    with pytest.raises(ConfigurationError, match="no WAIT") as info:
        await make("dragonfly", server.url, wait_for_replicas=1)
    assert info.value.field == "options.wait_for_replicas"


async def test_wait_for_fsync_without_waitaof(make: Maker, redis_server_factory: ServerFactory) -> None:
    """No WAITAOF (probed; Redis 7.0, KeyDB; on a server that has it, it is renamed away):
    accepted only where the server fsyncs every write itself, and then nothing is sent."""
    args: list[str] = []
    if (await probed(redis_server_factory())).has_waitaof:
        args = ["--rename-command", "WAITAOF", ""]
    plain = redis_server_factory(extra_args=args)
    assert not (await probed(plain)).has_waitaof
    with pytest.raises(ConfigurationError) as info:
        await make("keydb", plain.url, wait_for_fsync=True)
    assert info.value.field == "options.wait_for_fsync"
    everysec = redis_server_factory(appendonly=True, appendfsync="everysec", extra_args=args)
    with pytest.raises(ConfigurationError, match="WAITAOF") as info:
        await make("redis-lists", everysec.url, wait_for_fsync=True)
    assert info.value.field == "options.wait_for_fsync"
    always = redis_server_factory(appendonly=True, appendfsync="always", extra_args=args)
    backend = await make("dragonfly", always.url, wait_for_fsync=True)
    assert await backend.enqueue(Job(payload=1))
    health = await backend.health()
    assert health.details["wait_for"] == "none"  # nothing to send: every write is fsynced
    assert health.details["appendfsync"] == "always"


@pytest.mark.parametrize("layout", ["lists", "streams"])
async def test_wait_for_fsync_with_waitaof(
    make: Maker, redis_server_factory: ServerFactory, layout: str
) -> None:
    """WAITAOF present (probed; e.g. Valkey 9.1, Redis 7.2+): refused without an AOF; with one
    (even ``appendfsync everysec``) ``WAITAOF 1 0 ms`` follows each durable write, on the
    writing connection, also when the script was re-sent after NOSCRIPT."""
    plain = redis_server_factory()
    server = await probed(plain)
    if not server.has_waitaof:
        pytest.skip(
            f"{server.label} has no WAITAOF (probed), and it cannot be added: this branch runs on "
            "servers with it (Valkey 9.1: nox -s tests_valkey)"
        )
    with pytest.raises(ConfigurationError, match="no AOF") as info:
        await make("keydb", plain.url, layout=layout, wait_for_fsync=True)
    assert info.value.field == "options.wait_for_fsync"

    everysec = redis_server_factory(appendonly=True, appendfsync="everysec")
    backend = await make("keydb", everysec.url, layout=layout, wait_for_fsync=True, wait_timeout=2)
    assert (await backend.health()).details["wait_for"] == "WAITAOF 1"
    before = waitaof_calls(everysec)
    assert await backend.enqueue(Job(id="j1", payload=1))
    got = await backend.dequeue()
    assert got is not None
    await backend.ack(got)
    assert waitaof_calls(everysec) - before == 2  # enqueue and ack; dequeue is not a durable op
    everysec.sync_client().script_flush()  # NOSCRIPT inside the durable pipeline: re-sent, waited for
    assert await backend.enqueue(Job(id="j2", payload=2))
    assert backend.script_set.reloads >= 1
    # 4: the refused pipeline's WAITAOF ran too (after the NOSCRIPT reply), then the re-sent one's
    assert waitaof_calls(everysec) - before == 4
    # what was confirmed is on disk: it survives kill -9 of the server
    everysec.kill()
    everysec.restart()
    assert await backend.length() == 1
    # AOF turned off under a running backend: WAITAOF is refused after the write, and the
    # error says the write was applied (it was: the queue holds it)
    everysec.sync_client().config_set("appendonly", "no")
    with pytest.raises(BackendError, match="write was applied, but the server refused WAITAOF"):
        await backend.enqueue(Job(id="j3", payload=3))
    assert await backend.length() == 2


async def test_wait_options_are_checked(make: Maker, redis_server: RedisServer) -> None:
    for bad, field in (
        ({"wait_for_replicas": -1}, "wait_for_replicas"),
        ({"wait_timeout": 0}, "wait_timeout"),
    ):
        with pytest.raises(ConfigurationError) as info:
            await make("keydb", redis_server.url, **bad)
        assert info.value.field == f"options.{field}"

"""Prove queuestore.testing and the real-server fixtures: each starts a real server as promised."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import redis
import redis.asyncio
import redis.cluster

from queuestore.testing import (
    CLI_BIN_ENV,
    SERVER_BIN_ENV,
    RedisCluster,
    RedisServer,
    ServerBinaryNotFoundError,
    ServerFactory,
    ServerStartError,
    free_port,
    reap_orphans,
    server_binary,
)


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# -- standalone ----------------------------------------------------------------------------------


def test_standalone_ping_set_get(redis_server: RedisServer) -> None:
    assert redis_server.running
    assert redis_server.port != 6379
    assert redis_server.host == "127.0.0.1"
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    client = redis_server.sync_client()
    assert client.ping() is True
    client.set(b"test_servers:greeting", b"hello")
    assert client.get(b"test_servers:greeting") == b"hello"  # bytes: decode_responses=False
    client.delete(b"test_servers:greeting")


def test_standalone_default_config(redis_server: RedisServer) -> None:
    client = redis_server.sync_client()
    config = client.config_get("*")  # redis-py decodes CONFIG GET replies to str
    assert config["save"] == ""
    assert config["appendonly"] == "no"
    assert config["bind"] == "127.0.0.1"
    assert config["maxmemory-policy"] == "noeviction"
    assert config["dir"] == str(redis_server.dir)
    assert (redis_server.dir / "server.log").exists()
    assert redis_server.pid is not None
    assert client.info("server")["process_id"] == redis_server.pid


def test_extra_args_win(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory(extra_args=["--maxmemory", "64mb", "--hz", "20"])
    config = server.sync_client().config_get("*")
    assert config["maxmemory"] == str(64 * 1024 * 1024)
    assert config["hz"] == "20"


# -- AOF, kill -9, restart -----------------------------------------------------------------------


def test_aof_write_survives_kill_and_restart(aof_redis_server: RedisServer) -> None:
    server = aof_redis_server
    client = server.sync_client()
    config = client.config_get("append*")
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "always"
    client.set(b"durable", b"yes")
    client.rpush(b"durable-list", b"a", b"b", b"c")
    port, old_pid = server.port, server.pid
    assert old_pid is not None

    server.kill()  # SIGKILL: no shutdown, no final flush
    assert not server.running
    assert server.pid is None
    assert _pid_gone(old_pid)
    with pytest.raises(redis.exceptions.ConnectionError):
        server.sync_client(socket_connect_timeout=0.5).ping()

    server.restart()
    assert server.running
    assert server.port == port
    assert server.pid != old_pid
    client = server.sync_client()
    assert client.get(b"durable") == b"yes"
    assert client.lrange(b"durable-list", 0, -1) == [b"a", b"b", b"c"]
    assert client.info("persistence")["loading"] == 0


def test_restart_of_a_running_server_keeps_port_and_dir(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory(appendonly=True)
    server.sync_client().set(b"k", b"v")
    port, directory = server.port, server.dir
    server.restart()  # graceful stop flushes the AOF even with everysec
    assert (server.port, server.dir) == (port, directory)
    assert server.sync_client().get(b"k") == b"v"


def test_start_failure_is_fast_and_shows_the_log(redis_server_factory: ServerFactory) -> None:
    started = time.monotonic()
    with pytest.raises(ServerStartError, match="no-such-directive") as info:
        redis_server_factory(extra_args=["--no-such-directive", "yes"])
    assert time.monotonic() - started < 10
    assert "log tail" in str(info.value)


def test_port_6379_is_refused() -> None:
    with pytest.raises(ValueError, match="6379"):
        RedisServer(port=6379)


def test_free_port_is_never_6379_and_has_a_free_bus_port() -> None:
    for _ in range(50):
        port = free_port()
        assert port != 6379
        assert 20000 <= port < 45000


# -- pause and resume ---------------------------------------------------------------------------


def test_pause_freezes_the_server_and_resume_continues(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory()
    client = server.sync_client(socket_timeout=0.5)
    client.set(b"k", b"v")
    server.pause()
    assert server.paused
    assert server.running
    with pytest.raises(redis.exceptions.TimeoutError):
        client.get(b"k")
    server.resume()
    assert not server.paused
    assert server.sync_client().get(b"k") == b"v"
    with server.frozen():
        assert server.paused
        with pytest.raises(redis.exceptions.TimeoutError):
            server.sync_client(socket_timeout=0.5).ping()
    assert server.sync_client().ping()


def test_stop_of_a_paused_server_is_prompt(redis_server_factory: ServerFactory) -> None:
    server = redis_server_factory()
    pid = server.pid
    assert pid is not None
    server.pause()
    started = time.monotonic()
    server.stop()  # resumes it first, so SIGTERM is handled at once
    assert time.monotonic() - started < 5
    assert _pid_gone(pid)
    assert not server.paused


# -- factory -------------------------------------------------------------------------------------


def test_factory_fixture_makes_independent_servers(redis_server_factory: ServerFactory) -> None:
    first = redis_server_factory()
    second = redis_server_factory(appendonly=True, appendfsync="always")
    assert first.running
    assert second.running
    assert first.port != second.port
    assert first.dir != second.dir
    first.sync_client().set(b"where", b"first")
    assert second.sync_client().get(b"where") is None
    assert second.sync_client().config_get("appendonly")["appendonly"] == "yes"


def test_factory_close_stops_every_server() -> None:
    # the redis_server_factory fixture's teardown is exactly ServerFactory.close()
    factory = ServerFactory()
    servers = [factory(), factory()]
    pids = [server.pid for server in servers]
    dirs = [server.dir for server in servers]
    factory.close()
    for server, pid, directory in zip(servers, pids, dirs, strict=True):
        assert not server.running
        assert pid is not None
        assert _pid_gone(pid)
        assert not directory.exists()
    assert factory.servers == []


def test_context_manager_stops_and_removes_dir() -> None:
    with RedisServer() as server:
        pid, directory = server.pid, server.dir
        assert server.sync_client().ping()
    assert pid is not None
    assert _pid_gone(pid)
    assert not directory.exists()


@pytest.mark.anyio
async def test_async_context_manager_starts_and_cleans_up() -> None:
    async with RedisServer(appendonly=True, appendfsync="always") as server:
        pid, directory = server.pid, server.dir
        client = redis.asyncio.Redis.from_url(server.url)
        try:
            assert await client.ping()
            assert (await client.config_get("appendfsync"))["appendfsync"] == "always"
        finally:
            await client.aclose()
    assert pid is not None
    assert _pid_gone(pid)
    assert not directory.exists()


def test_reap_orphans_kills_servers_of_dead_runs(tmp_path: os.PathLike[str]) -> None:
    # Simulate a run that died with kill -9: a base dir named after a dead pid, holding a
    # live server that nobody tracks any more.
    exited = subprocess.Popen(["true"])
    exited.wait()  # its pid now names no process: the "dead owner"
    base = os.path.join(tmp_path, f"queuestore-servers-{exited.pid}-x")
    server = RedisServer(dir=os.path.join(base, "redis-orphan"))
    server.start()
    proc = server._proc
    assert proc is not None
    server._forget()  # as if our process had died: we no longer track it...
    (server.dir / "server.pid").write_text(str(proc.pid))  # ...but its pid file is still there
    server._proc = None
    try:
        assert reap_orphans(str(tmp_path)) == 1
        assert proc.wait(5) == -9
        assert not os.path.exists(base)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- binaries ------------------------------------------------------------------------------------


def test_missing_server_binary_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SERVER_BIN_ENV, "/nonexistent/valkey-server")
    with pytest.raises(ServerBinaryNotFoundError) as info:
        RedisServer()
    message = str(info.value)
    assert SERVER_BIN_ENV in message
    assert "/nonexistent/valkey-server" in message


def test_missing_cli_binary_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CLI_BIN_ENV, "no-such-redis-cli")
    with pytest.raises(ServerBinaryNotFoundError, match=CLI_BIN_ENV):
        RedisCluster()


def test_server_binary_env_var_is_used(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> None:
    # A wrapper script standing in for e.g. valkey-server: it must be the binary that runs.
    real = subprocess.run(["which", "redis-server"], capture_output=True, text=True).stdout.strip()
    if os.environ.get(SERVER_BIN_ENV):
        real = os.environ[SERVER_BIN_ENV]
    wrapper = os.path.join(tmp_path, "my-server")
    marker = os.path.join(tmp_path, "wrapper-ran")
    with open(wrapper, "w") as f:
        f.write(f'#!/bin/sh\ntouch "{marker}"\nexec "{real}" "$@"\n')
    os.chmod(wrapper, 0o755)
    monkeypatch.setenv(SERVER_BIN_ENV, wrapper)
    with RedisServer() as server:
        assert server.binary == wrapper
        assert server.sync_client().ping()
    assert os.path.exists(marker)


def test_binary_argument_wins_over_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    real = server_binary()  # redis-server, or what the env var names for this run
    monkeypatch.setenv(SERVER_BIN_ENV, "/nonexistent/valkey-server")
    with RedisServer(binary=real) as server:
        assert server.binary == real
        assert server.sync_client().ping()
    with pytest.raises(ServerBinaryNotFoundError, match="no-such-server"):
        RedisServer(binary="no-such-server")


# -- cluster -------------------------------------------------------------------------------------


def _slot_owners(cluster: RedisCluster) -> dict[int, int]:
    """slot range start -> owner port, as CLUSTER NODES on each node reports it; all must agree."""
    views = []
    for node in cluster.nodes:
        nodes = node.sync_client(decode_responses=True).execute_command("CLUSTER", "NODES")
        view = {}
        for line in str(nodes).splitlines():
            fields = line.split()
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            assert "master" in fields[2]
            for slot_range in fields[8:]:
                view[int(slot_range.split("-")[0])] = port
        views.append(view)
    assert all(view == views[0] for view in views)
    return views[0]


def test_cluster_is_ok_with_three_primaries(redis_cluster: RedisCluster) -> None:
    assert len(redis_cluster.nodes) == 3
    assert redis_cluster.startup_nodes == [f"127.0.0.1:{node.port}" for node in redis_cluster.nodes]
    assert redis_cluster.url == redis_cluster.nodes[0].url
    for node in redis_cluster.nodes:
        info = node.sync_client(decode_responses=True).execute_command("CLUSTER", "INFO")
        assert "cluster_state:ok" in info
        assert "cluster_known_nodes:3" in info
        assert "cluster_size:3" in info
    owners = _slot_owners(redis_cluster)
    assert sorted(set(owners.values())) == sorted(node.port for node in redis_cluster.nodes)


def test_cluster_keys_in_three_slots_land_on_three_nodes(redis_cluster: RedisCluster) -> None:
    probe = redis_cluster.nodes[0].sync_client()
    chosen: dict[int, tuple[bytes, int]] = {}  # owner port -> (key, slot)
    for i in range(1000):
        key = f"{{test_servers-q{i}}}:job".encode()
        slot = int(probe.execute_command("CLUSTER", "KEYSLOT", key))
        owner = redis_cluster.node_for_slot(slot).port
        chosen.setdefault(owner, (key, slot))
        if len(chosen) == 3:
            break
    assert len(chosen) == 3

    # the session's cluster is shared: other tests' keys may sit in the same slots
    before = {
        node.port: int(node.sync_client().execute_command("CLUSTER", "COUNTKEYSINSLOT", chosen[node.port][1]))
        for node in redis_cluster.nodes
    }
    client = redis_cluster.sync_client()
    for port, (key, _slot) in chosen.items():
        client.set(key, str(port).encode())

    for node in redis_cluster.nodes:
        own_key, own_slot = chosen[node.port]
        direct = node.sync_client()
        assert direct.get(own_key) == str(node.port).encode()  # the owner serves it itself
        assert int(direct.execute_command("CLUSTER", "COUNTKEYSINSLOT", own_slot)) == before[node.port] + 1
        for port, (other_key, _) in chosen.items():
            if port != node.port:
                with pytest.raises(redis.exceptions.MovedError, match=f"127.0.0.1:{port}"):
                    direct.get(other_key)  # the others redirect to the owner
    client.delete(*(key for key, _ in chosen.values()))


def test_cluster_cross_slot_mset_is_refused(redis_cluster: RedisCluster) -> None:
    node = redis_cluster.nodes[0]
    direct = node.sync_client()
    # two keys in different slots: the server refuses before looking at ownership
    slots = {int(direct.execute_command("CLUSTER", "KEYSLOT", key)) for key in ("a", "b")}
    assert len(slots) == 2
    with pytest.raises(redis.exceptions.ClusterCrossSlotError) as refused:  # redis-py's CROSSSLOT
        direct.execute_command("MSET", "a", "1", "b", "2")
    assert refused.value.status_code == "CROSSSLOT"
    # one hash tag: one slot, so the same MSET is fine (through the cluster client)
    client = redis_cluster.sync_client()
    assert client.mset({b"{tagged}a": b"1", b"{tagged}b": b"2"})
    assert client.mget([b"{tagged}a", b"{tagged}b"]) == [b"1", b"2"]
    # and the cluster client refuses the cross-slot one too
    with pytest.raises(redis.exceptions.RedisClusterException, match="same key slot"):
        client.execute_command("MSET", b"a", b"1", b"b", b"2")
    client.delete(b"{tagged}a", b"{tagged}b")


def test_an_aof_cluster_node_killed_and_restarted_rejoins_with_its_data() -> None:
    with RedisCluster(appendonly=True, appendfsync="always") as cluster:
        client = cluster.sync_client()
        client.set(b"{kept}k", b"v")
        node = cluster.node_for_slot(int(client.keyslot(b"{kept}k")))
        config = node.sync_client().config_get("append*")
        assert (config["appendonly"], config["appendfsync"]) == ("yes", "always")
        port = node.port
        node.kill()
        node.restart()
        assert node.port == port
        deadline = time.monotonic() + 30
        while node.sync_client().execute_command("CLUSTER", "INFO").find(b"cluster_state:ok") < 0:
            assert time.monotonic() < deadline, "the restarted node did not rejoin"
            time.sleep(0.1)
        assert cluster.node_for_slot(int(client.keyslot(b"{kept}k"))).port == port, "it kept its slots"
        assert node.sync_client().get(b"{kept}k") == b"v"

"""BackendManager on the memory backend and a fault-injecting backend type."""

from __future__ import annotations

import logging
import time

import anyio
import pytest

import queuestore as qs
from queuestore import _owned
from tests.manager.faulty import SECRET, FaultOptions, FaultyBackend, FaultyFactory

pytestmark = pytest.mark.anyio


def is_closed(backend: qs.QueueBackend) -> bool:
    return backend.closed  # a call: mypy keeps no narrowing across awaits through it


def mem(name: str, **options: object) -> qs.BackendConfig:
    return qs.BackendConfig(type="memory", name=name, options=dict(options))


def faulty_cfg(name: str, **options: object) -> qs.BackendConfig:
    return qs.BackendConfig(type="faulty", name=name, options={"namespace": name, **options})


async def test_add_get_remove_list(registry: qs.BackendRegistry, ns: str) -> None:
    manager = qs.BackendManager(registry)
    try:
        emails = await manager.add_backend("emails", mem(ns))
        sms = await manager.add_backend("sms", mem(ns))
        assert manager.list_queues() == ["emails", "sms"]
        assert manager.get_backend("emails") is emails
        assert (emails.queue, sms.queue) == ("emails", "sms")
        # one backend name, two queues: separate queues in one store
        await emails.enqueue(qs.Job(payload={"n": 1}))
        assert (await emails.length(), await sms.length()) == (1, 0)
        got = await manager.get_backend("emails").dequeue()
        assert got is not None
        assert got.payload == {"n": 1}
        cfg = manager.get_backend_config("sms")
        assert (cfg.queue, cfg.name, cfg.type) == ("sms", ns, "memory")
        await manager.remove_backend("sms")
        assert sms.closed
        assert manager.list_queues() == ["emails"]
    finally:
        await manager.aclose()
    assert emails.closed
    assert manager.closed


async def test_unknown_queue_and_backend_codes(registry: qs.BackendRegistry, ns: str) -> None:
    async with qs.BackendManager(registry) as manager:
        for call in (lambda: manager.get_backend("nope"), lambda: manager.get_backend_config("nope")):
            with pytest.raises(qs.QueueNotFoundError) as info:
                call()
            assert qs.error_code(info.value) == "QUEUE_NOT_FOUND"
        with pytest.raises(qs.QueueNotFoundError):
            await manager.remove_backend("nope")
        with pytest.raises(qs.BackendNotFoundError) as b_info:
            await manager.add_backend("q", qs.BackendConfig(type="no-such-type"))
        assert qs.error_code(b_info.value) == "BACKEND_NOT_FOUND"
        with pytest.raises(qs.ConfigurationError) as c_info:
            await manager.add_backend("q", mem(ns, bogus=1))
        assert c_info.value.field == "options.bogus"
        with pytest.raises(qs.ConfigurationError):
            await manager.add_backend("", mem(ns))
        assert manager.list_queues() == []


async def test_replace_closes_the_old_backend(registry: qs.BackendRegistry, ns: str) -> None:
    async with qs.BackendManager(registry) as manager:
        old = await manager.add_backend("q", mem(ns))
        new = await manager.add_backend("q", mem(ns + "-2"))
        assert old.closed
        assert not new.closed
        assert manager.get_backend("q") is new
        assert manager.get_backend_config("q").name == ns + "-2"
    assert new.closed


async def test_failed_replacement_keeps_the_old_backend(registry: qs.BackendRegistry, ns: str) -> None:
    async with qs.BackendManager(registry) as manager:
        old = await manager.add_backend("q", mem(ns))
        with pytest.raises(qs.ConnectionFailedError):
            await manager.add_backend("q", faulty_cfg(ns, fail_create=True))
        assert manager.get_backend("q") is old
        assert not old.closed


async def test_health_check_is_concurrent_and_isolates_failures(
    registry: qs.BackendRegistry, ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="queuestore")
    async with qs.BackendManager(registry, health_timeout=0.5) as manager:
        await manager.add_backend("ok", mem(ns))
        await manager.add_backend("raises", faulty_cfg(ns + "r", health="raise"))
        await manager.add_backend("hangs-1", faulty_cfg(ns + "h1", health="hang"))
        await manager.add_backend("hangs-2", faulty_cfg(ns + "h2", health="hang"))
        started = time.monotonic()
        health = await manager.health_check()
        elapsed = time.monotonic() - started
    assert list(health) == ["hangs-1", "hangs-2", "ok", "raises"]
    assert health["ok"].status == qs.HealthLevel.HEALTHY
    assert health["raises"].status == qs.HealthLevel.UNHEALTHY
    assert "cannot reach" in health["raises"].message
    for q in ("hangs-1", "hangs-2"):
        assert health[q].status == qs.HealthLevel.UNHEALTHY
        assert "no answer within 0.5s" in health[q].message
    assert elapsed < 0.95, "two hanging backends were checked one after the other"
    assert SECRET not in repr(health)
    assert SECRET not in caplog.text


async def test_stats_is_concurrent_and_isolates_failures(registry: qs.BackendRegistry, ns: str) -> None:
    async with qs.BackendManager(registry) as manager:
        ok = await manager.add_backend("ok", mem(ns))
        await ok.enqueue(qs.Job(payload=1))
        await manager.add_backend("raises", faulty_cfg(ns + "r", stats="raise"))
        await manager.add_backend("hangs-1", faulty_cfg(ns + "h1", stats="hang"))
        await manager.add_backend("hangs-2", faulty_cfg(ns + "h2", stats="hang"))
        started = time.monotonic()
        stats = await manager.stats(time_limit=0.4)
        elapsed = time.monotonic() - started
    good = stats["ok"]
    assert isinstance(good, qs.BackendStats)
    assert good.queue_depth == 1
    raised = stats["raises"]
    assert isinstance(raised, qs.ConnectionFailedError)
    assert qs.error_code(raised) == "CONNECTION_FAILED"
    for q in ("hangs-1", "hangs-2"):
        hung = stats[q]
        assert isinstance(hung, qs.OperationTimeoutError)
        assert qs.error_code(hung) == "TIMEOUT"
        assert hung.operation == "stats"
    assert elapsed < 0.75
    assert SECRET not in repr(stats)
    assert SECRET not in str(raised)


async def test_foreign_stats_error_is_wrapped(registry: qs.BackendRegistry, ns: str) -> None:
    class Broken(FaultyBackend):
        async def stats(self) -> qs.BackendStats:
            raise ZeroDivisionError(f"oops password={SECRET}")

    config = qs.BackendConfig(type="faulty", name=ns, queue="q")
    broken = Broken(config, FaultOptions())
    await broken.open()
    async with qs.BackendManager(registry) as manager:
        assert await manager.switch_backend("q", broken, config) is None
        result = (await manager.stats())["q"]
    assert broken.closed  # adopted: closed with the manager
    assert type(result) is qs.BackendError
    assert result.operation == "stats"
    assert isinstance(result.err, ZeroDivisionError)
    assert SECRET not in str(result)


async def test_context_manager_runs_maintenance_and_closes_all(
    registry: qs.BackendRegistry, faulty: FaultyFactory, ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_owned, "MAINTENANCE_BACKOFF", (0.01, 0.02))
    async with qs.BackendManager(registry) as manager:
        steady = await manager.add_backend("steady", faulty_cfg(ns))
        broken = await manager.add_backend("broken", faulty_cfg(ns + "b", maintenance="raise"))
        spare = await manager.open_backend(faulty_cfg(ns + "s"))
        with anyio.fail_after(5):
            while broken.maintenance_runs < 3 or steady.maintenance_runs < 1:  # type: ignore[attr-defined]
                await anyio.sleep(0.01)
        assert steady.maintenance_runs == 1  # type: ignore[attr-defined]  # not restarted: still running
        assert spare.maintenance_runs == 1  # type: ignore[attr-defined]
        await manager.remove_backend("steady")
        assert steady.closed
    assert all(b.closed for b in faulty.created)
    assert manager.closed
    with pytest.raises(qs.BackendClosedError):
        await manager.add_backend("late", mem(ns))


async def test_backends_added_before_enter_get_maintenance(
    registry: qs.BackendRegistry, faulty: FaultyFactory, ns: str
) -> None:
    manager = qs.BackendManager(registry)
    backend = await manager.add_backend("q", faulty_cfg(ns))
    assert backend.maintenance_runs == 0  # type: ignore[attr-defined]
    async with manager:
        with anyio.fail_after(5):
            while backend.maintenance_runs == 0:  # type: ignore[attr-defined]
                await anyio.sleep(0.01)
    assert backend.closed


async def test_exit_on_error_still_closes(
    registry: qs.BackendRegistry, faulty: FaultyFactory, ns: str
) -> None:
    async def body() -> None:
        async with qs.BackendManager(registry) as manager:
            await manager.add_backend("q", faulty_cfg(ns))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await body()
    assert faulty.created
    assert all(b.closed for b in faulty.created)


async def test_from_config_with_memory(registry: qs.BackendRegistry, ns: str) -> None:
    config = qs.load_config(
        f"""
backends:
  {ns}: {{type: memory, options: {{visibility_timeout: 5s}}}}
  {ns}-other: {{type: memory}}
queues:
  emails: {{backend: {ns}}}
  reports: {{backend: {ns}-other}}
  sms: {{}}
defaults: {{backend: {ns}}}
"""
    ).apply_defaults(registry)
    async with await qs.BackendManager.from_config(config, registry) as manager:
        assert manager.config is config
        assert manager.list_queues() == ["emails", "reports", "sms"]
        for queue in manager.list_queues():
            backend = manager.get_backend(queue)
            assert await backend.enqueue(qs.Job(payload={"q": queue}))
            job = await backend.dequeue(qs.DequeueOptions(timeout=1))
            assert job is not None
            assert job.payload == {"q": queue}
            await backend.ack(job)
        assert manager.get_backend_config("sms").name == ns
        assert manager.get_backend_config("emails").options == {"visibility_timeout": "5s"}
        health = await manager.health_check()
        assert {h.status for h in health.values()} == {qs.HealthLevel.HEALTHY}


async def test_from_config_failure_closes_what_was_created(
    registry: qs.BackendRegistry, faulty: FaultyFactory, ns: str
) -> None:
    config = qs.load_config(
        f"backends: {{good: {{type: faulty, options: {{namespace: {ns}}}}},"
        f" bad: {{type: faulty, options: {{fail_create: true}}}}}}\n"
        "queues: {a: {backend: good}, b: {backend: bad}}\n"
    )
    with pytest.raises(qs.ConnectionFailedError):
        await qs.BackendManager.from_config(config, registry)
    assert len(faulty.created) == 1
    assert faulty.created[0].closed


async def test_from_config_validates_first(registry: qs.BackendRegistry) -> None:
    config = qs.load_config("backends: {m: {type: memory}}\nqueues: {q: {backend: nope}}\n")
    with pytest.raises(qs.ConfigurationError) as info:
        await qs.BackendManager.from_config(config, registry)
    assert info.value.field == "queues.q.backend"


async def test_open_switch_and_close_backend(registry: qs.BackendRegistry, ns: str) -> None:
    async with qs.BackendManager(registry) as manager:
        source = await manager.add_backend("q", mem(ns))
        target_cfg = qs.BackendConfig(type="memory", name=ns + "-t", queue="q")
        target = await manager.open_backend(target_cfg)
        assert manager.list_queues() == ["q"]
        assert manager.get_backend("q") is source
        previous = await manager.switch_backend("q", target, target_cfg)
        assert previous is source
        assert not source.closed  # handed back, not closed
        assert manager.get_backend("q") is target
        assert manager.get_backend_config("q").name == ns + "-t"
        with pytest.raises(qs.BackendError):
            await manager.close_backend(target)  # still routed
        await manager.close_backend(source)
        assert is_closed(source)
        # switching to a backend that serves another queue is refused
        other = await manager.open_backend(qs.BackendConfig(type="memory", name=ns, queue="other"))
        with pytest.raises(qs.ConfigurationError) as info:
            await manager.switch_backend("q", other, target_cfg)
        assert info.value.field == "queue"
        # a new queue can be switched to a fresh backend: nothing is returned
        assert await manager.switch_backend("other", other, qs.BackendConfig(type="memory", name=ns)) is None
    assert target.closed
    assert other.closed


async def test_resolve_backend_config(registry: qs.BackendRegistry) -> None:
    config = qs.load_config(
        """
backends:
  main:
    type: redis-lists
    url: redis://cache:6380/2
    options: {password: pw, key_prefix: "q:", tls_ca_file: /ca.pem}
  mem: {type: memory}
defaults: {pool_size: 4}
"""
    )
    manager = qs.BackendManager(qs.default_registry(), config=config)
    like = (
        config.backend_config_for_queue("jobs")
        if "jobs" in config.queues
        else config.get_backend_config("main")
    )
    by_name = manager.resolve_backend_config("mem", like=like, queue="jobs")
    assert (by_name.type, by_name.name, by_name.queue) == ("memory", "mem", "jobs")
    by_type = manager.resolve_backend_config("redis-streams", like=like, queue="jobs")
    assert (by_type.type, by_type.url, by_type.queue) == ("redis-streams", "redis://cache:6380/2", "jobs")
    assert by_type.options["password"] == "pw"
    assert by_type.options["tls_ca_file"] == "/ca.pem"
    # its own key namespace under the source's prefix: two layouts never share a key
    assert by_type.options["key_prefix"] == "q:redis-streams:"
    assert by_type.options["max_connections"] == 4
    keydb = manager.resolve_backend_config("keydb", like=like, queue="jobs")
    assert keydb.options["max_connections"] == 8
    as_memory = manager.resolve_backend_config("memory", like=like, queue="jobs")
    assert (as_memory.url, as_memory.options) == ("", {})
    with pytest.raises(qs.BackendNotFoundError) as info:
        manager.resolve_backend_config("nothing", like=like, queue="jobs")
    assert qs.error_code(info.value) == "BACKEND_NOT_FOUND"
    # without a loaded config, a routed backend's name resolves too
    bare = qs.BackendManager(registry)
    try:
        await bare.add_backend("a", mem("routed"))
        found = bare.resolve_backend_config("routed", like=like, queue="b")
        assert (found.name, found.queue) == ("routed", "b")
    finally:
        await bare.aclose()
    assert manager.config is config
    assert bare.config is None

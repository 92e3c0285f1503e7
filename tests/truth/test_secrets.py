"""Passwords holding every special character never show: not in a config's repr, str or
to_builtins, not in an error of validate() or registry.create, not in a log record, stats or
health. The real server checks use a password of each kind for a real ACL user."""

from __future__ import annotations

import logging
import string
import urllib.parse
from collections.abc import Iterator

import msgspec
import pytest

import queuestore as qs
from queuestore._redact import redact
from tests.servers import RedisServer, free_port

pytestmark = pytest.mark.anyio

PASSWORDS = [f"Pw{c}x{c}9Zq" for c in string.punctuation + " "] + ["pa ss/w@rd:#?%~", "pässwörd€-7"]
IDS = [f"char-{ord(p[2])}" for p in PASSWORDS[:-2]] + ["mixed", "unicode"]


def url_forms(pw: str, host: str = "cache:6379") -> dict[str, str]:
    enc = urllib.parse.quote(pw, safe="")
    return {
        "raw-no-user": f"redis://:{pw}@{host}/0",
        "raw-user": f"redis://admin:{pw}@{host}/0",
        "encoded": f"redis://admin:{enc}@{host}/0",
        "tls-encoded": f"rediss://:{enc}@{host}/0",
        "no-host-no-user": f"redis://:{pw}",
        "no-host-user": f"redis://admin:{pw}",
    }


def leaks(pw: str, *texts: object) -> list[str]:
    """The texts that show the password (raw or percent-encoded)."""
    forms = {pw, urllib.parse.quote(pw, safe=""), urllib.parse.quote(pw)}
    return [str(t) for t in texts if any(f in str(t) for f in forms)]


def error_texts(err: BaseException) -> list[object]:
    texts: list[object] = [str(err), repr(err), repr(err.args), getattr(err, "message", "")]
    inner = getattr(err, "err", None)
    if isinstance(err, qs.BackendError) and inner is not None:
        texts += [str(inner), repr(inner)]
    return texts


@pytest.mark.parametrize("pw", PASSWORDS, ids=IDS)
def test_config_surfaces_hide_every_password(pw: str) -> None:
    backends = {
        name: qs.BackendConfig(type="redis-lists", name=name, url=url) for name, url in url_forms(pw).items()
    }
    backends["opts"] = qs.BackendConfig(
        type="redis-lists",
        url="redis://cache:6379/0",
        options={"password": pw, "sentinel_password": pw, "auth_token": pw},
    )
    backends["addrs"] = qs.BackendConfig(
        type="redis-lists", cluster_mode=True, cluster_addrs=[f"admin:{pw}@node:7000"]
    )
    config = qs.StorageConfig(backends=backends)
    texts: list[object] = [
        repr(config),
        str(config),
        config.to_builtins(),
        msgspec.json.encode(config.to_builtins()),
    ]
    for backend in backends.values():
        texts += [repr(backend), str(backend), backend.redacted()]
    assert leaks(pw, *texts) == []
    # what the backend uses is untouched
    assert backends["opts"].options["password"] == pw
    assert backends["raw-user"].url == f"redis://admin:{pw}@cache:6379/0"


@pytest.mark.parametrize("pw", PASSWORDS, ids=IDS)
def test_validate_errors_hide_every_password(pw: str) -> None:
    refused = 0
    for name, url in url_forms(pw, host="cache:notaport").items() | url_forms(pw).items():
        config = qs.StorageConfig(backends={"a": qs.BackendConfig(type="redis-lists", url=url)})
        texts: list[object] = []
        try:
            config.validate()
        except qs.QueueStoreError as exc:
            texts, refused = error_texts(exc), refused + 1
        assert leaks(pw, *texts) == [], name
    assert refused >= 4  # the four "cache:notaport" forms, at least, are refused


async def _create_and_use(config: qs.BackendConfig) -> None:
    backend = await qs.default_registry().create(config.type, config)
    async with backend:
        await backend.length()


@pytest.mark.parametrize("pw", PASSWORDS, ids=IDS)
async def test_create_errors_hide_every_password(pw: str) -> None:
    closed = f"127.0.0.1:{free_port()}"
    for name, url in url_forms(pw, host=closed).items():
        config = qs.BackendConfig(
            type="redis-lists", name="a", url=url, options={"conn_timeout": 0.5, "max_retries": 0}
        )
        with pytest.raises(qs.QueueStoreError) as info:
            await _create_and_use(config)
        assert leaks(pw, *error_texts(info.value)) == [], name


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with RedisServer() as srv:
        yield srv


@pytest.mark.parametrize("pw", PASSWORDS, ids=IDS)
@pytest.mark.parametrize("type_", ["redis-lists", "redis-streams"])
async def test_a_real_server_with_every_password(
    server: RedisServer, pw: str, type_: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = server.sync_client()
    admin.execute_command("ACL", "SETUSER", "app", "on", "resetpass", f">{pw}", "~*", "&*", "+@all")
    enc = urllib.parse.quote(pw, safe="")
    good_url = f"redis://app:{enc}@{server.address}/0"
    bad_url = f"redis://app:{urllib.parse.quote(pw[::-1] + 'x', safe='')}@{server.address}/0"
    config = qs.StorageConfig(
        backends={
            "good": qs.BackendConfig(type=type_, url=good_url),
            "opt": qs.BackendConfig(
                type=type_, url=f"redis://{server.address}/0", options={"username": "app", "password": pw}
            ),
            "bad": qs.BackendConfig(type=type_, url=bad_url, options={"max_retries": 0}),
        },
        queues={"s-good": qs.QueueConfig(backend="good"), "s-opt": qs.QueueConfig(backend="opt")},
    ).apply_defaults()
    config.validate()
    texts: list[object] = [repr(config), config.to_builtins()]
    async with await qs.BackendManager.from_config(config) as manager:
        for queue in ("s-good", "s-opt"):
            backend = manager.get_backend(queue)
            await backend.enqueue(qs.Job(payload={"pw": "not-here"}))
            got = await backend.dequeue(qs.DequeueOptions(timeout=0))
            assert got is not None
            await backend.ack(got)
            texts += [repr(backend), await backend.stats(), await backend.health(), backend.capabilities()]
        with pytest.raises(qs.AuthenticationFailedError) as info:
            await manager.add_backend("s-bad", config.get_backend_config("bad"))
        texts += error_texts(info.value)
        texts += [await manager.health_check(), await manager.stats(), repr(manager)]
    texts += [caplog.text, *(redact(r.getMessage()) for r in caplog.records)]
    texts += [msgspec.json.encode(t) for t in texts if isinstance(t, msgspec.Struct)]
    assert leaks(pw, *texts) == []
    assert "healthy" in repr(texts)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("lease_token: a redis-streams lease token", "lease_token: a redis-streams lease token"),
        ("options.password: Expected `str`, got `int`", "options.password: Expected `str`, got `int`"),
        (
            "the HELLO AUTH <user> <pass> option can be used",
            "the HELLO AUTH <user> <pass> option can be used",
        ),
        ("token bucket refilled; auth ok", "token bucket refilled; auth ok"),
        (
            "ERR AUTH <password> called without any password configured for the default user",
            "ERR AUTH <password> called without any password configured for the default user",
        ),
    ],
)
def test_honest_words_are_not_blanked(text: str, kept: str) -> None:
    assert redact(text) == kept


@pytest.mark.parametrize("type_", ["redis-lists", "redis-streams"])
async def test_a_stopped_or_frozen_server_shows_no_password(
    type_: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Errors, health and stats of backends whose server froze (SIGSTOP) and then went away."""
    caplog.set_level(logging.DEBUG)
    with RedisServer() as srv:
        admin = srv.sync_client()
        backends: list[tuple[str, qs.QueueBackend]] = []
        texts: list[object] = []
        for i, pw in enumerate(PASSWORDS):
            admin.execute_command("ACL", "SETUSER", f"u{i}", "on", f">{pw}", "~*", "&*", "+@all")
            url = f"redis://u{i}:{urllib.parse.quote(pw, safe='')}@{srv.address}/0"
            cfg = qs.BackendConfig(
                type=type_,
                name=f"b{i}",
                queue=f"q{i}",
                url=url,
                options={"read_timeout": 0.3, "max_retries": 0},
            )
            backend = await qs.default_registry().create(type_, cfg)
            backends.append((pw, backend))
        try:
            with srv.frozen():
                for pw, backend in backends[:3]:
                    with pytest.raises(qs.QueueStoreError) as info:
                        await backend.enqueue(qs.Job(payload=1))
                    texts += [(pw, t) for t in error_texts(info.value)]
                    texts += [(pw, await backend.health())]
            srv.stop()
            for pw, backend in backends:
                with pytest.raises(qs.QueueStoreError) as info:
                    await backend.enqueue(qs.Job(payload=1))
                texts += [(pw, t) for t in error_texts(info.value)]
                health = await backend.health()
                assert health.status == qs.HealthLevel.UNHEALTHY
                texts += [(pw, health), (pw, msgspec.json.encode(health)), (pw, repr(backend))]
                try:
                    texts += [(pw, await backend.stats())]
                except qs.QueueStoreError as exc:
                    texts += [(pw, t) for t in error_texts(exc)]
        finally:
            for _, backend in backends:
                await backend.aclose()
    shown = [(pw, text) for pw, text in texts if leaks(pw, text)]
    assert shown == []
    assert [pw for pw in PASSWORDS if leaks(pw, caplog.text)] == []


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("options.password=hunter22 rest", "hunter22"),
        ("sentinel_password='a b c' rest", "a b c"),
        ('{"auth_token": "t0k\\"en"}', 't0k\\"en'),
        ("dial redis://:pa$$word@10.0.0.1:6379/0 failed", "pa$$word"),
        ("dial redis://admin:pa$$word failed", "pa$$word"),
        ("AUTH alice s3cret-4", "s3cret-4"),
        ("dial redis://admin:\u00b2\u00b3\u00b9 failed", "\u00b2\u00b3\u00b9"),  # digits to isdigit, no port
    ],
)
def test_free_text_secrets_are_redacted(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert "***" in out

"""Passwords never appear in a repr, str, log line or error message."""

from __future__ import annotations

import logging

import pytest

import queuestore as qs

SECRET = "hunter2-Zq9"
TEXT = f"""
backends:
  main:
    type: redis-lists
    url: "redis://admin:{SECRET}@cache:6379/0"
    options: {{password: "{SECRET}", key_prefix: "q:"}}
  mem: {{type: memory}}
queues: {{emails: {{backend: main}}}}
"""


def test_config_repr_and_str_hide_passwords() -> None:
    config = qs.load_config(TEXT).apply_defaults()
    for text in (
        repr(config),
        str(config),
        repr(config.backends["main"]),
        str(config.get_backend_config("main")),
    ):
        assert SECRET not in text
        assert "q:" in text or "main" in text
    dumped = config.to_builtins()
    assert SECRET not in repr(dumped)
    assert dumped["backends"]["main"]["options"]["password"] == "***"
    # the real values are still there for the backend to use
    assert config.backends["main"].options["password"] == SECRET


@pytest.mark.parametrize(
    "url",
    [
        f"redis://admin:{SECRET}@cache:notaport/0",
        f"redis://:{SECRET}@:6379/0",
        f"redis://admin:{SECRET}@cache:6379/db",
        f"http://admin:{SECRET}@cache:6379/0",
        f"redis://admin:{SECRET}/x@cache:6379/0",
        f"redis://admin:{SECRET}@cache:6379/0?db=x",
    ],
)
def test_url_errors_hide_passwords(url: str) -> None:
    text = f"backends: {{a: {{type: redis-lists, url: '{url}'}}}}"
    with pytest.raises(qs.ConfigurationError) as info:
        qs.load_config(text).validate(require_factories=False)
    assert info.value.field == "backends.a.url"
    for part in (str(info.value), repr(info.value), info.value.message, repr(info.value.args)):
        assert SECRET not in part


def test_option_errors_hide_passwords() -> None:
    text = f"backends: {{m: {{type: memory, options: {{password: '{SECRET}'}}}}}}"
    with pytest.raises(qs.ConfigurationError) as info:
        qs.load_config(text).validate()
    assert info.value.field == "backends.m.options.password"
    assert SECRET not in str(info.value)


def test_backend_config_repr_hides_every_password_option() -> None:
    cfg = qs.BackendConfig(
        type="redis-lists", url=f"rediss://u:{SECRET}@h/0", options={"sentinel_password": SECRET}
    )
    assert SECRET not in repr(cfg)
    assert SECRET not in str(cfg)


@pytest.mark.anyio
async def test_manager_logs_hide_passwords(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="queuestore")
    config = qs.load_config(
        f"backends: {{mem: {{type: memory, url: 'memory://u:{SECRET}@x'}}}}\nqueues: {{q: {{backend: mem}}}}"
    ).apply_defaults()
    async with await qs.BackendManager.from_config(config) as manager:
        assert SECRET not in repr(manager.get_backend_config("q"))
        await manager.health_check()
        await manager.stats()
    assert caplog.records  # something was logged
    assert SECRET not in caplog.text

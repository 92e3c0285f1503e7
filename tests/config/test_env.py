"""``${ENV_VAR}`` and ``${ENV_VAR:-default}`` interpolation."""

from __future__ import annotations

import pytest

import queuestore as qs

TEXT = """
backends:
  main:
    type: redis-lists
    url: "redis://:${REDIS_PASSWORD}@${REDIS_HOST:-localhost}:${REDIS_PORT:-6379}/${REDIS_DB:-0}"
    database: ${REDIS_DB:-0}
    options:
      key_prefix: "$${literal}:"
      password: "${REDIS_PASSWORD}"
defaults:
  pool_size: ${POOL:-7}
  timeout: ${TIMEOUT:-10s}
"""


def test_interpolation_with_defaults() -> None:
    config = qs.load_config(TEXT, env={"REDIS_PASSWORD": "s3cr:t#x", "REDIS_DB": "2"})
    main = config.backends["main"]
    assert main.url == "redis://:s3cr:t#x@localhost:6379/2"
    assert main.database == 2  # a string from the environment, converted to the field's type
    assert main.options == {"key_prefix": "${literal}:", "password": "s3cr:t#x"}
    assert (config.defaults.pool_size, config.defaults.timeout) == (7, 10.0)


def test_default_used_when_set_but_empty() -> None:
    config = qs.load_config(TEXT, env={"REDIS_PASSWORD": "p", "REDIS_HOST": "", "POOL": "3", "TIMEOUT": "1m"})
    assert "@localhost:6379/0" in config.backends["main"].url
    assert (config.defaults.pool_size, config.defaults.timeout) == (3, 60.0)


def test_values_are_not_rescanned() -> None:
    config = qs.load_config("defaults: {backend: '${A}'}", env={"A": "${B}"})
    assert config.defaults.backend == "${B}"


def test_missing_variable_names_the_field_and_not_a_value() -> None:
    with pytest.raises(qs.ConfigurationError) as info:
        qs.load_config(TEXT, env={})
    assert info.value.field == "backends.main.url"
    assert "REDIS_PASSWORD" in str(info.value)
    assert qs.error_code(info.value) == "INVALID_CONFIGURATION"


def test_missing_variable_inside_a_list() -> None:
    with pytest.raises(qs.ConfigurationError) as info:
        qs.load_config(
            "backends: {k: {type: keydb, cluster_mode: true, cluster_addrs: [a:1, '${NODE2}']}}", env={}
        )
    assert info.value.field == "backends.k.cluster_addrs[1]"


def test_nested_default_is_refused() -> None:
    with pytest.raises(qs.ConfigurationError, match="nested"):
        qs.load_config("defaults: {backend: '${A:-${B}}'}", env={})


def test_os_environ_is_the_default_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QS_TEST_BACKEND", "from-env")
    assert qs.load_config("defaults: {backend: '${QS_TEST_BACKEND}'}").defaults.backend == "from-env"


def test_keys_are_not_interpolated() -> None:
    config = qs.load_config("backends: {'${X}': {type: memory}}", env={"X": "y"})
    assert list(config.backends) == ["${X}"]

"""A corpus of broken configs: each names the error type, its code and the field path."""

from __future__ import annotations

import pytest

import queuestore as qs

INVALID = "INVALID_CONFIGURATION"
ENV = {"HOST": "cache.internal", "EMPTY": ""}


def _full(text: str) -> None:
    """Everything an operator runs: load, apply_defaults, validate (generic + factory)."""
    qs.load_config(text, env=ENV).apply_defaults().validate(require_factories=False)


# (id, yaml, field path, a fragment of the message)
CONFIGURATION_ERRORS = [
    (
        "unknown-backend-type",
        "backends: {a: {type: redis-lits, url: 'redis://h'}}",
        "backends.a.type",
        "redis-lits",
    ),
    ("missing-type", "backends: {a: {url: 'redis://h'}}", "backends.a.type", "required"),
    (
        "unknown-option",
        "backends: {m: {type: memory, options: {bogus: 1}}}",
        "backends.m.options.bogus",
        "unknown",
    ),
    (
        "option-wrong-type",
        "backends: {m: {type: memory, options: {namespace: [1, 2]}}}",
        "backends.m.options.namespace",
        "Expected",
    ),
    (
        "option-bad-duration",
        "backends: {m: {type: memory, options: {visibility_timeout: 10 parsecs}}}",
        "backends.m.options.visibility_timeout",
        "invalid duration",
    ),
    ("unknown-backend-field", "backends: {a: {type: memory, urll: x}}", "backends.a.urll", "unknown field"),
    (
        "field-wrong-type",
        "backends: {a: {type: redis-lists, url: 'redis://h', database: zero}}",
        "backends.a.database",
        "int",
    ),
    (
        "cluster-mode-wrong-type",
        "backends: {a: {type: keydb, cluster_mode: [x]}}",
        "backends.a.cluster_mode",
        "bool",
    ),
    ("bad-duration", "defaults: {timeout: 30 seconds}", "defaults.timeout", "invalid duration"),
    ("negative-duration", "defaults: {read_timeout: -1s}", "defaults.read_timeout", "invalid duration"),
    ("zero-timeout", "defaults: {write_timeout: 0s}", "defaults.write_timeout", "> 0"),
    ("negative-pool-size", "defaults: {pool_size: -3}", "defaults.pool_size", ">= 1"),
    ("unknown-defaults-field", "defaults: {pool_sise: 3}", "defaults.pool_sise", "unknown field"),
    (
        "bad-url-scheme",
        "backends: {a: {type: redis-lists, url: 'http://h:6379/0'}}",
        "backends.a.url",
        "scheme",
    ),
    ("bad-url-port", "backends: {a: {type: redis-lists, url: 'redis://h:port/0'}}", "backends.a.url", "port"),
    (
        "bad-url-db",
        "backends: {a: {type: redis-streams, url: 'redis://h:6379/first'}}",
        "backends.a.url",
        "database",
    ),
    (
        "bad-url-no-host",
        "backends: {a: {type: redis-lists, url: 'redis://:6379/0'}}",
        "backends.a.url",
        "no host",
    ),
    ("bad-unix-url", "backends: {a: {type: redis-lists, url: 'unix://'}}", "backends.a.url", "socket path"),
    ("missing-url", "backends: {a: {type: dragonfly}}", "backends.a.url", "required"),
    (
        "db-conflict",
        "backends: {a: {type: redis-lists, url: 'redis://h/1', database: 2}}",
        "backends.a.database",
        "conflicts",
    ),
    (
        "negative-database",
        "backends: {a: {type: redis-lists, url: 'redis://h', database: -1}}",
        "backends.a.database",
        ">= 0",
    ),
    (
        "negative-database-memory",
        "backends: {a: {type: memory, database: -5}}",
        "backends.a.database",
        ">= 0",
    ),
    (
        "cluster-addr-port",
        "backends: {a: {type: keydb, cluster_mode: true, cluster_addrs: ['k1:6379', 'k2:x']}}",
        "backends.a.cluster_addrs[1]",
        "port",
    ),
    (
        "cluster-no-addrs",
        "backends: {a: {type: keydb, cluster_mode: true}}",
        "backends.a.cluster_addrs",
        "needs",
    ),
    (
        "cluster-db",
        "backends: {a: {type: keydb, cluster_mode: true, cluster_addrs: ['k:1'], database: 3}}",
        "backends.a.database",
        "only database 0",
    ),
    (
        "addrs-without-cluster",
        "backends: {a: {type: keydb, url: 'redis://h', cluster_addrs: ['k:1']}}",
        "backends.a.cluster_addrs",
        "cluster_mode",
    ),
    (
        "empty-stream-name",
        "backends: {s: {type: redis-streams, url: 'redis://h', options: {stream_name: ''}}}",
        "backends.s.options.stream_name",
        "non-empty",
    ),
    (
        "queue-missing-backend",
        "backends: {a: {type: memory}}\nqueues: {emails: {backend: b}}",
        "queues.emails.backend",
        "unknown backend 'b'",
    ),
    (
        "queue-no-default",
        "backends: {a: {type: memory}, b: {type: memory}}\nqueues: {emails: {}}",
        "queues.emails.backend",
        "no default",
    ),
    (
        "unknown-queue-field",
        "queues: {emails: {backend: a, retries: 3}}",
        "queues.emails.retries",
        "unknown field",
    ),
    (
        "missing-env-var",
        "backends: {a: {type: redis-lists, url: 'redis://${NOPE_NOT_SET}:6379'}}",
        "backends.a.url",
        "NOPE_NOT_SET",
    ),
    (
        "unterminated-env-var",
        "backends: {a: {type: memory, options: {namespace: '${HOST'}}}",
        "backends.a.options.namespace",
        "unterminated",
    ),
    (
        "bad-env-var-name",
        "defaults: {backend: '${1X}'}",
        "defaults.backend",
        "invalid environment variable name",
    ),
    ("yaml-syntax", "backends: {a: [\n", "", "invalid YAML"),
    ("yaml-tab-indent", "backends:\n\ta: 1\n", "", "invalid YAML"),
    ("top-level-list", "- backends\n- queues\n", "", "top level must be a mapping"),
    ("top-level-scalar", "just a string", "", "top level must be a mapping"),
    ("empty-document", "", "", "empty"),
    ("unknown-top-level", "backend: {a: {type: memory}}", "backend", "unknown field"),
    ("backends-not-mapping", "backends: [a, b]", "backends", "mapping"),
    ("backend-not-mapping", "backends: {a: memory}", "backends.a", "mapping"),
    ("non-string-name", "backends: {1: {type: memory}}", "backends[1]", "name"),
    (
        "default-backend-unknown",
        "backends: {a: {type: memory}}\ndefaults: {backend: zzz}",
        "defaults.backend",
        "no backend",
    ),
    (
        "ambiguous-default-backend",
        "backends: {a: {type: memory}, b: {type: memory}}\ndefaults: {backend: memory}",
        "defaults.backend",
        "ambiguous",
    ),
    ("self-referencing-alias", "backends: &a {x: *a}", "backends.x", "refers to itself"),
]


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [c[1:] for c in CONFIGURATION_ERRORS],
    ids=[c[0] for c in CONFIGURATION_ERRORS],
)
def test_broken_config_names_the_field(text: str, field: str, fragment: str) -> None:
    with pytest.raises(qs.ConfigurationError) as info:
        _full(text)
    err = info.value
    assert qs.error_code(err) == INVALID
    assert err.field == field
    assert str(err).startswith(f"{field}: " if field else "")
    assert fragment in str(err)
    assert qs.is_permanent(err)


def test_default_via_type_applies_and_validates() -> None:
    config = qs.load_config(
        "backends: {a: {type: memory}, b: {type: redis-lists, url: 'redis://h'}}\n"
        "defaults: {backend: memory}\nqueues: {q: {}}"
    )
    config.apply_defaults().validate(require_factories=False)
    assert config.queues["q"].backend == "a"


def test_memory_url_is_refused_by_its_factory() -> None:
    with pytest.raises(qs.ConfigurationError) as info:
        _full("backends: {m: {type: memory, url: 'redis://h'}}")
    assert info.value.field == "backends.m.url"


@pytest.mark.parametrize(
    ("options", "field", "fragment"),
    [
        ("{max_conections: 3}", "backends.l.options.max_conections", "unknown field"),
        ("{max_connections: lots}", "backends.l.options.max_connections", "Expected `int`"),
        ("{read_timeout: 3 parsecs}", "backends.l.options.read_timeout", "invalid duration"),
    ],
)
def test_redis_lists_factory_option_errors_name_the_field(options: str, field: str, fragment: str) -> None:
    with pytest.raises(qs.ConfigurationError) as info:
        qs.load_config(
            f"backends: {{l: {{type: redis-lists, url: 'redis://h', options: {options}}}}}"
        ).apply_defaults().validate()
    assert info.value.field == field
    assert fragment in str(info.value)


def test_redis_streams_factory_option_errors_name_the_field() -> None:
    # a streams option of the wrong type
    with pytest.raises(qs.ConfigurationError) as info:
        qs.load_config(
            "backends:\n  redis-streams:\n    type: redis-streams\n    url: redis://h:6379/1\n"
            "    options: {max_length: lots}\n"
        ).apply_defaults().validate()
    assert info.value.field == "backends.redis-streams.options.max_length"


def test_registry_errors_have_their_own_codes() -> None:
    registry = qs.default_registry()
    with pytest.raises(qs.BackendNotFoundError) as info:
        registry.validate("nope", qs.BackendConfig(type="nope"))
    assert qs.error_code(info.value) == "BACKEND_NOT_FOUND"
    assert "nope" in str(info.value)
    with pytest.raises(qs.ConfigurationError) as cfg_info:
        registry.validate("memory", qs.BackendConfig(type="memory", options={"x": 1}))
    assert cfg_info.value.field == "options.x"


def test_unreadable_file(tmp_path: pytest.TempPathFactory) -> None:
    with pytest.raises(qs.ConfigurationError) as info:
        qs.load_config_from_file(f"{tmp_path}/missing.yaml")
    assert "cannot read" in str(info.value)
    assert qs.error_code(info.value) == INVALID


def test_non_utf8_file(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "bad.yaml"
    path.write_bytes(b"backends: \xff\xfe\x00")
    with pytest.raises(qs.ConfigurationError, match=r"invalid YAML in .*bad\.yaml"):
        qs.load_config_from_file(path)

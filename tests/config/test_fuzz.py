"""Whatever the input, loading, applying defaults and validating raise only ConfigurationError."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import queuestore as qs
from queuestore._config_loader import config_from_data

NAMES = st.sampled_from(
    [
        "backends", "queues", "defaults", "type", "url", "database", "cluster_mode", "cluster_addrs",
        "options", "backend", "timeout", "pool_size", "batch_size", "read_timeout", "idle_timeout",
        "max_retries", "stream_name", "namespace", "visibility_timeout", "password", "a", "b", "",
    ]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "memory",
            "redis-lists",
            "redis-streams",
            "keydb",
            "dragonfly",
            "30s",
            "5m",
            "100ms",
            "-1s",
            "redis://h:6379/0",
            "redis://u:p@h:x/y",
            "unix:///tmp/s?db=z",
            "rediss://[::1",
            "h:1",
            "${HOME}",
            "${NOPE}",
            "${NOPE:-1s}",
            "${",
            "$${x}",
            "a",
            "b",
        ]
    ),
    st.text(max_size=12),
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(NAMES, st.integers(-2, 2)), children, max_size=5),
    ),
    max_leaves=40,
)
# config-shaped data: right top-level keys, random insides
SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "backends": st.one_of(
            TREES, st.dictionaries(NAMES, st.dictionaries(NAMES, TREES, max_size=5), max_size=3)
        ),
        "queues": st.one_of(
            TREES, st.dictionaries(NAMES, st.dictionaries(NAMES, TREES, max_size=2), max_size=3)
        ),
        "defaults": st.one_of(TREES, st.dictionaries(NAMES, SCALARS, max_size=5)),
    },
)


def _exercise(load: Any) -> None:
    try:
        config = load()
        config.apply_defaults()
        config.validate()
        for name in [*list(config.queues)[:2], "unlisted"]:
            config.get_queue_config(name)
    except (qs.ConfigurationError, qs.QueueNotFoundError):
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_random_text(text: str) -> None:
    _exercise(lambda: qs.load_config(text, env={"HOME": "/h"}))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(TREES, SHAPED))
def test_random_structures_as_yaml(data: Any) -> None:
    try:
        text = yaml.safe_dump(data)
    except (yaml.YAMLError, ValueError):  # pragma: no cover - not representable
        return
    _exercise(lambda: qs.load_config(text, env={"HOME": "/h"}))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(TREES, SHAPED))
def test_random_structures_as_data(data: Any) -> None:
    _exercise(lambda: config_from_data(data, env={"HOME": "/h"}))


YAML_LINES = [
    "backends:", "  a:", "    type: memory", "  - x", "&a [*a]", "{", "}", ":", "- ",
    "!!binary aGk=", "!!python/object:os.system x", "? [a]", "\t", "...", "---",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(YAML_LINES), max_size=8))
def test_random_yaml_lines(lines: list[str]) -> None:
    _exercise(lambda: qs.load_config("\n".join(lines)))


def test_alias_bomb_is_bounded() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    lines.append("backends: {m: {type: memory, options: {namespace: *a8}}}")
    _exercise(lambda: qs.load_config("\n".join(lines)))


def test_deep_nesting_is_bounded() -> None:
    _exercise(lambda: qs.load_config("backends: " + "[" * 3000 + "]" * 3000))
    _exercise(lambda: qs.load_config("backends:\n" + "".join("  " * i + "- \n" for i in range(2000))))

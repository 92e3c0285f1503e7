"""The complete YAML example (every backend type, defaults, queues): load -> apply_defaults ->
validate -> resolved values."""

from __future__ import annotations

from pathlib import Path

import pytest

import queuestore as qs

EXAMPLE = Path(__file__).with_name("example.yaml")


def _example() -> qs.StorageConfig:
    return qs.load_config_from_file(EXAMPLE).apply_defaults()


def test_example_loads_with_its_shape() -> None:
    config = qs.load_config_from_file(EXAMPLE)
    assert list(config.backends) == ["redis-default", "redis-streams", "keydb-cluster"]
    assert {q: c.backend for q, c in config.queues.items()} == {
        "default": "redis-default",
        "analytics": "redis-streams",
        "bulk-processing": "keydb-cluster",
    }
    d = config.defaults
    assert (d.backend, d.max_retries, d.batch_size, d.pool_size) == ("redis-lists", 3, 100, 10)
    assert (d.timeout, d.idle_timeout, d.read_timeout, d.write_timeout) == (30.0, 300.0, 1.0, 1.0)
    keydb = config.backends["keydb-cluster"]
    assert keydb.cluster_mode is True
    assert keydb.url == ""
    assert keydb.cluster_addrs == ["keydb1:6379", "keydb2:6379", "keydb3:6379"]
    assert config.backends["redis-streams"].options["max_length"] == 10000
    assert all(name == b.name for name, b in config.backends.items())


def test_example_apply_defaults_resolves_per_type_values() -> None:
    config = _example()
    lists = config.backends["redis-default"].options
    # set by the operator: kept
    assert lists["max_connections"] == 10
    assert lists["key_prefix"] == "queue:"
    streams = config.backends["redis-streams"].options
    assert streams["max_connections"] == 10  # pool_size
    assert streams["stream_name"] == "analytics-stream"
    assert streams["consumer_group"] == "processors"
    keydb = config.backends["keydb-cluster"].options
    assert keydb["max_connections"] == 50  # operator's value wins over pool_size * 2
    assert keydb["pipeline_size"] == 1000  # operator's value wins over batch_size
    assert (keydb["read_timeout"], keydb["write_timeout"]) == (0.1, 0.2)
    for opts in (lists, streams):
        assert (opts["read_timeout"], opts["write_timeout"], opts["idle_timeout"]) == (1.0, 1.0, 300.0)
        assert (opts["conn_timeout"], opts["max_retries"]) == (30.0, 3)
    # defaults.backend names a *type*: the one backend of that type
    assert config.default_backend() == "redis-default"
    assert config.get_queue_config("not-listed").backend == "redis-default"
    assert config.get_queue_config("analytics").backend == "redis-streams"


def test_example_apply_defaults_is_idempotent() -> None:
    once = qs.load_config_from_file(EXAMPLE).apply_defaults()
    twice = qs.load_config_from_file(EXAMPLE).apply_defaults().apply_defaults()
    assert once == twice


def test_example_generic_validation_passes() -> None:
    # every rule that does not need the Redis factories: types, URLs, cluster settings, queues
    _example().validate(require_factories=False)


def test_missing_factory_module_is_an_error_not_silently_valid() -> None:
    registry = qs.BackendRegistry()
    registry.register_lazy("redis-lists", "queuestore.backends.not_installed:Factory")
    config = qs.load_config("backends: {main: {type: redis-lists, url: 'redis://h:6379/0'}}")
    config.apply_defaults(registry)  # the connection defaults, as they are
    assert config.backends["main"].options["max_connections"] == 10
    config.validate(registry, require_factories=False)  # the generic rules pass
    with pytest.raises(qs.ConfigurationError) as info:
        config.validate(registry)
    assert info.value.field == "backends.main.type"
    assert "not available" in str(info.value)
    assert "queuestore.backends.not_installed" in str(info.value)
    assert qs.error_code(info.value) == "INVALID_CONFIGURATION"


@pytest.mark.parametrize(("backend", "queue"), [("redis-default", "default"), ("redis-streams", "analytics")])
def test_example_backend_validates_with_its_factory(backend: str, queue: str) -> None:
    config = _example()
    single = qs.StorageConfig(
        backends={backend: config.backends[backend]},
        queues={queue: config.queues[queue]},
        defaults=qs.DefaultsConfig(backend=backend),
    )
    single.validate()
    accepted = qs.default_registry().option_names(config.backends[backend].type)
    assert accepted is not None
    assert set(config.backends[backend].options) <= accepted


def test_example_validates_as_written() -> None:
    config = _example()
    config.validate()
    # the defaults landed only on options the real factories accept
    for backend in config.backends.values():
        accepted = qs.default_registry().option_names(backend.type)
        assert accepted is not None
        assert set(backend.options) <= accepted


def test_example_backend_and_queue_lookups() -> None:
    config = _example()
    got = config.get_backend_config("redis-streams")
    assert got.type == "redis-streams"
    assert got.name == "redis-streams"
    got.options["mutated"] = True  # a copy
    assert "mutated" not in config.backends["redis-streams"].options
    served = config.backend_config_for_queue("analytics")
    assert (served.queue, served.queue_name(), served.url) == (
        "analytics",
        "analytics",
        "redis://localhost:6379/1",
    )
    with pytest.raises(qs.BackendNotFoundError) as info:
        config.get_backend_config("nope")
    assert qs.error_code(info.value) == "BACKEND_NOT_FOUND"


def test_no_default_backend_means_unlisted_queue_not_found() -> None:
    config = qs.load_config("backends: {a: {type: memory}, b: {type: memory}}\n")
    assert config.default_backend() is None
    with pytest.raises(qs.QueueNotFoundError) as info:
        config.get_queue_config("x")
    assert qs.error_code(info.value) == "QUEUE_NOT_FOUND"
    single = qs.load_config("backends: {only: {type: memory}}\nqueues: {q: {}}\n").apply_defaults()
    assert single.default_backend() == "only"
    assert single.queues["q"].backend == "only"


def test_defaults_only_fill_options_the_type_accepts() -> None:
    config = qs.load_config(
        """
backends:
  mem: {type: memory, options: {visibility_timeout: 5s}}
  fly: {type: dragonfly, url: "redis://h:6379/0"}
defaults: {pool_size: 4, batch_size: 50}
"""
    ).apply_defaults()
    # memory takes none of the connection options
    assert config.backends["mem"].options == {"visibility_timeout": "5s"}  # raw: the factory parses it
    fly = config.backends["fly"].options
    assert (fly["max_connections"], fly["pipeline_size"], fly["compression"]) == (12, 100, True)
    assert (fly["read_timeout"], fly["write_timeout"]) == (0.05, 0.1)
    config.validate(require_factories=False)

"""The dialect factories: layout choice, their tuned defaults (the same values
``StorageConfig.apply_defaults`` fills), operator values winning, each dialect's own
options classes, and errors naming the field."""

from __future__ import annotations

import pytest

from queuestore import BackendConfig, ConfigurationError, default_registry, load_config
from queuestore.backends.dragonfly import DragonflyFactory, DragonflyListsOptions, DragonflyStreamsOptions
from queuestore.backends.keydb import KeyDBFactory, KeyDBListsOptions, KeyDBStreamsOptions
from queuestore.backends.redis_lists import RedisListsBackend
from queuestore.backends.redis_streams import RedisStreamsBackend
from tests.servers import RedisServer

from .conftest import Maker

pytestmark = pytest.mark.anyio


def cfg(backend_type: str, **options: object) -> BackendConfig:
    return BackendConfig(
        type=backend_type, name="x", url="redis://127.0.0.1:1/0", queue="q", options=dict(options)
    )


def test_tuned_defaults_where_unset() -> None:
    k = KeyDBFactory().parse(cfg("keydb"))
    assert isinstance(k, KeyDBListsOptions)
    assert (k.max_connections, k.read_timeout, k.write_timeout, k.pipeline_size, k.compression) == (
        20, 0.1, 0.2, 100, False,
    )  # fmt: skip
    d = DragonflyFactory().parse(cfg("dragonfly", layout="streams"))
    assert isinstance(d, DragonflyStreamsOptions)
    assert (d.max_connections, d.read_timeout, d.write_timeout, d.pipeline_size, d.compression) == (
        30, 0.05, 0.1, 200, True,
    )  # fmt: skip
    mine = DragonflyFactory().parse(cfg("dragonfly", compression=False, pipeline_size=7, read_timeout="2s"))
    assert (mine.compression, mine.pipeline_size, mine.read_timeout) == (False, 7, 2.0)


def test_each_dialect_has_its_own_options_classes() -> None:
    assert KeyDBListsOptions is not DragonflyListsOptions
    assert KeyDBStreamsOptions is not DragonflyStreamsOptions
    assert isinstance(KeyDBFactory().parse(cfg("keydb", layout="streams")), KeyDBStreamsOptions)
    assert isinstance(DragonflyFactory().parse(cfg("dragonfly")), DragonflyListsOptions)


def test_yaml_defaults_and_factory_agree() -> None:
    config = load_config(
        "backends:\n"
        "  k: {type: keydb, url: 'redis://h:1/0'}\n"
        "  d: {type: dragonfly, url: 'redis://h:1/0', options: {layout: streams, max_connections: 5}}\n"
        "defaults: {pool_size: 4, batch_size: 50}\n"
    ).apply_defaults()
    config.validate()
    k = KeyDBFactory().parse(config.get_backend_config("k"))
    d = DragonflyFactory().parse(config.get_backend_config("d"))
    assert (k.max_connections, k.pipeline_size, k.read_timeout) == (8, 50, 0.1)
    assert (d.max_connections, d.pipeline_size, d.compression) == (5, 100, True)  # set value kept


@pytest.mark.parametrize(
    ("options", "field", "text"),
    [
        ({"layout": "hash"}, "options.layout", "'lists' or 'streams'"),
        ({"consumer_group": "g"}, "options.consumer_group", "layout: streams"),
        ({"layout": "streams", "bury_limit": 3}, "options.bury_limit", "layout: lists"),
        ({"nope": 1}, "options.nope", "unknown"),
        ({"pipeline_size": 0}, "options.pipeline_size", ">= 1"),
    ],
)
def test_errors_name_the_field(options: dict[str, object], field: str, text: str) -> None:
    for factory in (KeyDBFactory(), DragonflyFactory()):
        with pytest.raises(ConfigurationError) as info:
            factory.validate(cfg(factory.backend_type, **options))
        assert info.value.field == field
        assert text in str(info.value)


async def test_layouts_make_the_redis_backends(make: Maker, redis_server: RedisServer) -> None:
    assert isinstance(await make("keydb", redis_server.url), RedisListsBackend)
    assert isinstance(await make("keydb", redis_server.url, layout="streams"), RedisStreamsBackend)
    assert isinstance(await make("dragonfly", redis_server.url, layout="lists"), RedisListsBackend)
    assert set(default_registry().list()) >= {"keydb", "dragonfly"}

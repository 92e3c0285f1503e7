"""Server dialect types (``keydb``, ``dragonfly``): thin dialects of the Redis backends.

A dialect type is *not* a backend of its own. Its factory picks a layout with the
``layout`` option (``lists``, the default, or ``streams``), fills its server's tuned
defaults where the operator set nothing, validates the options with that layout's
options Struct, and creates a plain
:class:`~queuestore.backends.redis_lists.RedisListsBackend` or
:class:`~queuestore.backends.redis_streams.RedisStreamsBackend`.

What really differs between servers (script header, XAUTOCLAIM reply shape,
XINFO lag fields, WAIT / WAITAOF, CLIENT NO-EVICT, cluster mode) is *probed* at
connect (:func:`~queuestore.backends._redis.probe.probe_server`), never derived
from the type name: a ``keydb`` backend on a Redis server runs Redis's dialect,
and a ``redis-lists`` backend on KeyDB runs KeyDB's. The tuned defaults are the
factory's own (:meth:`DialectFactory.option_defaults`): ``StorageConfig.apply_defaults``
asks the factory for them through the registry, and a backend made straight from
the factory gets what a YAML file without a ``defaults:`` section would give it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec

from queuestore._args import parse_options
from queuestore._config_rules import alias_given
from queuestore._models import BackendConfig, DefaultsConfig
from queuestore.abc import BackendFactory
from queuestore.backends._redis.base import RedisBackendBase
from queuestore.backends._redis.options import RedisBackendOptions
from queuestore.backends.redis_lists import RedisListsBackend, RedisListsFactory, RedisListsOptions
from queuestore.backends.redis_streams import RedisStreamsBackend, RedisStreamsFactory, RedisStreamsOptions
from queuestore.errors import ConfigurationError

__all__ = ["LAYOUTS", "DialectFactory", "DialectListsOptions", "DialectStreamsOptions"]

Layout = Literal["lists", "streams"]
LAYOUTS: tuple[Layout, ...] = ("lists", "streams")


class DialectListsOptions(RedisListsOptions, kw_only=True, forbid_unknown_fields=True):
    """The ``redis-lists`` options plus ``layout: lists`` (each dialect subclasses it).

    Attributes:
        layout: ``lists`` makes a ``redis-lists`` backend, ``streams`` a ``redis-streams`` one.
    """

    layout: Literal["lists"] = "lists"


class DialectStreamsOptions(RedisStreamsOptions, kw_only=True, forbid_unknown_fields=True):
    """The ``redis-streams`` options plus ``layout: streams`` (each dialect subclasses it).

    Attributes:
        layout: ``streams`` makes a ``redis-streams`` backend, ``lists`` a ``redis-lists`` one.
    """

    layout: Literal["streams"] = "streams"


def _names(options_type: type[msgspec.Struct]) -> frozenset[str]:
    return frozenset(f.encode_name for f in msgspec.structs.fields(options_type))


class DialectFactory(BackendFactory[RedisBackendOptions]):
    """Base of the ``keydb`` / ``dragonfly`` factories: layout + tuned defaults, then a Redis backend.

    A dialect names its two options Structs and its tuned values. ``options_type``
    (what ``apply_defaults`` and the CLI read) is the lists layout's Struct, the
    default layout; :meth:`parse` switches to ``streams_options`` when ``layout: streams``.
    """

    #: the registered type name
    backend_type: ClassVar[str]
    #: the options Struct of each layout
    options_type: type[DialectListsOptions]
    streams_options: ClassVar[type[DialectStreamsOptions]]
    #: tuned defaults: max_connections = pool_size * pool_factor,
    #: pipeline_size = batch_size * pipeline_factor, read and write timeouts (seconds)
    pool_factor: ClassVar[int]
    pipeline_factor: ClassVar[int]
    read_timeout: ClassVar[float]
    write_timeout: ClassVar[float]
    compression: ClassVar[bool] = False

    def option_defaults(self, defaults: DefaultsConfig) -> dict[str, Any]:
        """The dialect's tuned values, from the ``defaults:`` section.

        ``max_connections``, ``pipeline_size`` scaled from ``pool_size`` and
        ``batch_size``; the server's own read and write timeouts (not
        ``defaults.read_timeout`` / ``write_timeout``); compression where the
        dialect turns it on.
        """
        tuned: dict[str, Any] = {
            "max_connections": defaults.pool_size * self.pool_factor,
            "read_timeout": self.read_timeout,
            "write_timeout": self.write_timeout,
            "pipeline_size": defaults.batch_size * self.pipeline_factor,
        }
        if self.compression:
            tuned["compression"] = True
        return tuned

    def layout(self, config: BackendConfig) -> Layout:
        """The configured layout.

        Raises:
            ConfigurationError: ``options.layout`` is neither ``lists`` nor ``streams``.
        """
        value = config.options.get("layout", "lists") if isinstance(config.options, dict) else "lists"
        if value not in LAYOUTS:
            raise ConfigurationError("options.layout", f"must be 'lists' or 'streams', got {value!r}")
        layout: Layout = value
        return layout

    def layout_options(self, layout: Layout) -> type[RedisBackendOptions]:
        """The options Struct of ``layout``."""
        return self.streams_options if layout == "streams" else self.options_type

    def with_defaults(self, config: BackendConfig) -> BackendConfig:
        """``config`` with the tuned defaults (of the stock ``defaults:`` section) filled in
        where the operator set nothing.

        Raises:
            ConfigurationError: ``options.layout`` is invalid.
        """
        known = _names(self.layout_options(self.layout(config)))
        tuned = {
            k: v
            for k, v in self.option_defaults(DefaultsConfig()).items()
            if k in known and not alias_given(k, config.options)
        }
        return msgspec.structs.replace(config, options={**tuned, **config.options})

    def parse(self, config: BackendConfig) -> RedisBackendOptions:
        """Check the config with the chosen layout's Struct and checks; return typed options.

        Raises:
            ConfigurationError: naming the field (``options.layout``, ``options.<name>``, ``url``...).
        """
        if not isinstance(config.options, dict):
            raise ConfigurationError("options", "must be a mapping")
        layout = self.layout(config)
        config = self.with_defaults(config)
        try:
            options = parse_options(self.layout_options(layout), config.options)
        except ConfigurationError as exc:
            other: Layout = "streams" if layout == "lists" else "lists"
            if exc.field.removeprefix("options.") in _names(self.layout_options(other)):
                raise ConfigurationError(
                    exc.field, f"{exc.message} (it is an option of layout: {other})"
                ) from None
            raise
        if isinstance(options, RedisStreamsOptions):
            RedisStreamsFactory().check(config, options)
        else:
            assert isinstance(options, RedisListsOptions)
            RedisListsFactory().check(config, options)
        return options

    async def create(self, config: BackendConfig) -> RedisBackendBase:
        """Make the chosen layout's backend and open it (connect, probe, load scripts).

        Raises:
            ConfigurationError: the config is invalid, or the server cannot honour an option.
            ConnectionFailedError: the server is unreachable.
        """
        options = self.parse(config)
        backend: RedisBackendBase
        if isinstance(options, RedisStreamsOptions):
            backend = RedisStreamsBackend(config, options)
        else:
            assert isinstance(options, RedisListsOptions)
            backend = RedisListsBackend(config, options)
        await backend.open()
        return backend

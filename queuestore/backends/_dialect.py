"""Server dialect types (``keydb``, ``dragonfly``): thin dialects of the Redis backends.

A dialect type is *not* a backend of its own. Its factory picks a layout with the
``layout`` option (``lists``, the default, or ``streams``), fills the seed's tuned
defaults for that server where the operator set nothing, validates the options
with that layout's options Struct, and creates a plain
:class:`~queuestore.backends.redis_lists.RedisListsBackend` or
:class:`~queuestore.backends.redis_streams.RedisStreamsBackend`.

What really differs between servers (script header, XAUTOCLAIM reply shape,
XINFO lag fields, WAIT / WAITAOF, CLIENT NO-EVICT, cluster mode) is *probed* at
connect (:func:`~queuestore.backends._redis.probe.probe_server`), never derived
from the type name: a ``keydb`` backend on a Redis server runs Redis's dialect,
and a ``redis-lists`` backend on KeyDB runs KeyDB's. The defaults are the same
table ``StorageConfig.apply_defaults`` uses (:func:`queuestore._config_rules.type_defaults`
with the stock ``defaults:`` section), so a backend made straight from the
registry gets what a YAML file without a ``defaults:`` section would give it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import msgspec

from queuestore._models import BackendConfig
from queuestore.abc import BackendFactory, parse_options
from queuestore.backends._redis.base import RedisBackendBase, RedisBackendOptions
from queuestore.backends._streams_model import RedisStreamsOptions
from queuestore.backends.redis_lists import RedisListsBackend, RedisListsFactory, RedisListsOptions
from queuestore.backends.redis_streams import RedisStreamsBackend, RedisStreamsFactory
from queuestore.errors import ConfigurationError

__all__ = ["LAYOUTS", "DialectFactory", "DialectListsOptions", "DialectStreamsOptions", "dialect_defaults"]

Layout = Literal["lists", "streams"]
LAYOUTS: tuple[Layout, ...] = ("lists", "streams")


class DialectListsOptions(RedisListsOptions, kw_only=True, forbid_unknown_fields=True):
    """The ``redis-lists`` options plus ``layout: lists``."""

    layout: Literal["lists"] = "lists"


class DialectStreamsOptions(RedisStreamsOptions, kw_only=True, forbid_unknown_fields=True):
    """The ``redis-streams`` options plus ``layout: streams``."""

    layout: Literal["streams"] = "streams"


_OPTIONS: dict[str, type[RedisBackendOptions]] = {
    "lists": DialectListsOptions,
    "streams": DialectStreamsOptions,
}


def dialect_defaults(backend_type: str) -> dict[str, Any]:
    """The seed's defaults of a dialect type, from the stock ``defaults:`` section.

    KeyDB: max_connections = pool_size * 2, read 100 ms, write 200 ms,
    pipeline_size = batch_size. Dragonfly: max_connections = pool_size * 3,
    read 50 ms, write 100 ms, pipeline_size = batch_size * 2, compression on.
    """
    from queuestore._config import DefaultsConfig  # config imports the registry, which lists us
    from queuestore._config_rules import type_defaults

    return type_defaults(backend_type, DefaultsConfig())


class DialectFactory(BackendFactory[RedisBackendOptions]):
    """Base of the ``keydb`` / ``dragonfly`` factories: layout + defaults, then a Redis backend.

    ``options_type`` (what ``apply_defaults`` and the CLI read) is the lists layout's
    Struct; :meth:`parse` switches to the streams Struct when ``layout: streams``.
    """

    #: the registered type name (the key of the defaults table)
    backend_type: ClassVar[str]
    options_type = DialectListsOptions

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

    def with_defaults(self, config: BackendConfig) -> BackendConfig:
        """``config`` with the type's defaults filled in where the operator set nothing.

        Raises:
            ConfigurationError: ``options.layout`` is invalid.
        """
        layout = self.layout(config)
        known = {f.encode_name for f in msgspec.structs.fields(_OPTIONS[layout])}
        defaults = {k: v for k, v in dialect_defaults(self.backend_type).items() if k in known}
        return msgspec.structs.replace(config, options={**defaults, **config.options})

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
            options = parse_options(_OPTIONS[layout], config.options)
        except ConfigurationError as exc:
            other = "streams" if layout == "lists" else "lists"
            name = exc.field.removeprefix("options.")
            if name in {f.encode_name for f in msgspec.structs.fields(_OPTIONS[other])}:
                raise ConfigurationError(
                    exc.field, f"{exc.message} (it is an option of layout: {other})"
                ) from None
            raise
        if isinstance(options, DialectStreamsOptions):
            RedisStreamsFactory().check(config, options)
        else:
            assert isinstance(options, DialectListsOptions)
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
        if isinstance(options, DialectStreamsOptions):
            backend = RedisStreamsBackend(config, options)
        else:
            assert isinstance(options, DialectListsOptions)
            backend = RedisListsBackend(config, options)
        await backend.open()
        return backend

"""How a backend type is made from a generic :class:`~queuestore.BackendConfig`."""

from __future__ import annotations

import abc
from typing import Any, Generic, TypeVar

import msgspec

from queuestore._args import parse_options
from queuestore._contract.backend import QueueBackend
from queuestore._models import BackendConfig, DefaultsConfig
from queuestore.errors import ConfigurationError

__all__ = ["BackendFactory"]

OptionsT = TypeVar("OptionsT", bound=msgspec.Struct)


class BackendFactory(abc.ABC, Generic[OptionsT]):
    """Creates backends of one type from a generic :class:`BackendConfig`."""

    #: the typed options Struct (forbids unknown fields)
    options_type: type[OptionsT]

    def parse(self, config: BackendConfig) -> OptionsT:
        """Check the config and return its typed options.

        Raises:
            ConfigurationError: naming the field (``options.<name>``, ``url``...).
        """
        if not isinstance(config.options, dict):
            raise ConfigurationError("options", "must be a mapping")
        if config.database is not None and (isinstance(config.database, bool) or config.database < 0):
            raise ConfigurationError("database", f"must be an int >= 0, got {config.database!r}")
        opts = parse_options(self.options_type, config.options)
        self.check(config, opts)
        return opts

    def check(self, config: BackendConfig, options: OptionsT) -> None:
        """Extra checks on top of the typed parse (override to add some)."""

    def option_names(self) -> frozenset[str]:
        """The option names ``options_type`` accepts."""
        return frozenset(f.encode_name for f in msgspec.structs.fields(self.options_type))

    def option_defaults(self, defaults: DefaultsConfig) -> dict[str, Any]:
        """The options this type takes from a config's ``defaults:`` section.

        ``StorageConfig.apply_defaults`` fills them, over the connection defaults
        every Redis-family type gets, where the operator set nothing. The base
        gives none; a factory with tuned values of its own overrides this.
        """
        return {}

    def validate(self, config: BackendConfig) -> None:
        """Raise ConfigurationError if ``config`` cannot make a backend."""
        self.parse(config)

    @abc.abstractmethod
    async def create(self, config: BackendConfig) -> QueueBackend:
        """Make a backend and open it (connect, probe, load scripts).

        Raises:
            ConfigurationError: the config is invalid.
            ConnectionFailedError: the server is unreachable.
        """

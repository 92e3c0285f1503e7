"""The options of the memory backend (``BackendConfig.options`` of type ``memory``)."""

from __future__ import annotations

from typing import Literal

import msgspec

from queuestore._args import parse_options
from queuestore._durations import Seconds
from queuestore._models import BackendConfig
from queuestore.errors import ConfigurationError

__all__ = ["MemoryOptions", "check_memory_config", "memory_options"]

#: options that must be a positive duration
_POSITIVE = ("visibility_timeout", "reclaim_interval", "metrics_window")


class MemoryOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Options of the memory backend (``BackendConfig.options``).

    Attributes:
        namespace: the in-process store to use; backends sharing it share queues.
        visibility_timeout: lease length of a dequeued job.
        reclaim_interval: how often the maintenance loop reclaims and promotes.
        idempotency_window: how long an ``idempotency_key`` dedups other ids.
        encoding: the wire format a payload must be encodable in.
        metrics_window: the window of the per-second rates in ``stats()``.
    """

    namespace: str | None = None
    visibility_timeout: Seconds = Seconds(30.0)
    reclaim_interval: Seconds = Seconds(1.0)
    idempotency_window: Seconds = Seconds(86400.0)
    encoding: Literal["msgpack", "json"] = "msgpack"
    metrics_window: Seconds = Seconds(60.0)


def check_memory_config(config: BackendConfig, options: MemoryOptions) -> None:
    """Reject zero lease/reclaim durations, a non-memory URL and cluster mode.

    Raises:
        ConfigurationError: naming the field.
    """
    for name in _POSITIVE:
        if getattr(options, name) <= 0:
            raise ConfigurationError(f"options.{name}", "must be > 0")
    if config.url and not config.url.startswith("memory://"):
        raise ConfigurationError("url", "the memory backend takes no URL (or 'memory://')")
    if config.cluster_mode:
        raise ConfigurationError("cluster_mode", "the memory backend has no cluster mode")


def memory_options(config: BackendConfig) -> MemoryOptions:
    """The typed, checked options of a ``memory`` backend config.

    Raises:
        ConfigurationError: naming the field (``options``, ``options.<name>``, ``url``...).
    """
    if not isinstance(config.options, dict):
        raise ConfigurationError("options", "must be a mapping")
    options = parse_options(MemoryOptions, config.options)
    check_memory_config(config, options)
    return options

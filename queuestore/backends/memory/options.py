"""The options of the memory backend (``BackendConfig.options`` of type ``memory``)."""

from __future__ import annotations

from typing import Literal

import msgspec

from queuestore._args import check_queue_name, parse_options
from queuestore._backoff import BackoffOption, check_backoff
from queuestore._durations import OptionalSeconds, Seconds
from queuestore._models import BackendConfig
from queuestore._retention import DEFAULT_DEAD_MAX, DEFAULT_DEAD_RETENTION, DeadMax, check_dead_max
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
        dead_retention: dead jobs older than this are dropped by the maintenance task
            (``0`` or ``none``: kept).
        dead_max: past this many dead jobs the oldest are dropped by the maintenance task
            (``0`` or ``none``: no limit).
        retry_backoff: the delay of a job nacked with ``requeue`` and no ``delay``
            (``{base, factor, max, jitter}``); ``none``: ready at once.
    """

    namespace: str | None = None
    visibility_timeout: Seconds = Seconds(30.0)
    reclaim_interval: Seconds = Seconds(1.0)
    idempotency_window: Seconds = Seconds(86400.0)
    encoding: Literal["msgpack", "json"] = "msgpack"
    metrics_window: Seconds = Seconds(60.0)
    dead_retention: OptionalSeconds = DEFAULT_DEAD_RETENTION
    dead_max: DeadMax = DEFAULT_DEAD_MAX
    retry_backoff: BackoffOption = None


def check_memory_config(config: BackendConfig, options: MemoryOptions) -> None:
    """Reject zero lease/reclaim durations, a non-memory URL, cluster mode and a bad queue name.

    Raises:
        ConfigurationError: naming the field.
    """
    check_queue_name(config.queue_name())
    for name in _POSITIVE:
        if getattr(options, name) <= 0:
            raise ConfigurationError(f"options.{name}", "must be > 0")
    check_dead_max(options.dead_max)
    check_backoff(options.retry_backoff)
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

"""The options of the memory backend (``BackendConfig.options`` of type ``memory``)."""

from __future__ import annotations

from typing import Literal

import msgspec

from queuestore._durations import Seconds

__all__ = ["MemoryOptions"]


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

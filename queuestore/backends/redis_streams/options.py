"""The options of ``redis-streams`` and their checks."""

from __future__ import annotations

import os
import socket
import uuid
from typing import Literal

from queuestore._durations import Seconds
from queuestore.backends._redis.options import RedisBackendOptions
from queuestore.backends.redis_streams.layout import MAX_LEASE_SECONDS, SEP
from queuestore.errors import ConfigurationError

__all__ = ["RedisStreamsOptions", "check_streams_options", "default_consumer_name", "lease_length"]


class RedisStreamsOptions(RedisBackendOptions, kw_only=True, forbid_unknown_fields=True):
    """Options of ``redis-streams`` on top of the common Redis ones.

    ``claim_min_idle`` is the default lease length, and also the idle time after
    which a pending entry *without* a lease record (an orphan) is taken with
    XAUTOCLAIM. ``visibility_timeout`` is accepted as its alias: when only one is
    set it is used; when both are set they must agree.

    Attributes:
        stream_name: suffix of the stream key (``<key_prefix>{<queue>}:<stream_name>``);
            unset: ``stream``.
        consumer_group: the group this backend reads with (created at open).
        consumer_name: this backend's consumer in the group; unset: host, pid and a random
            part, unique per backend instance.
        groups: more groups created at open, each reading every entry (fan-out).
        max_length: with ``retention: retain``, trim acked entries down to this many
            (never below what a group still needs); 0 = no bound.
        claim_min_idle: the lease length (alias: ``visibility_timeout``), and the idle time
            after which a pending entry without a lease record is taken over.
        claim_count: entries one reclaim step takes (XAUTOCLAIM COUNT).
        retention: ``delete`` acked entries at once, or ``retain`` them for replay.
    """

    stream_name: str | None = None
    consumer_group: str = "workers"
    consumer_name: str | None = None
    groups: tuple[str, ...] = ()
    max_length: int = 0
    claim_min_idle: Seconds | None = None
    claim_count: int = 100
    retention: Literal["delete", "retain"] = "delete"
    #: create a consumer group named per call (``DequeueOptions.consumer_group``) on first use;
    #: by default only ``consumer_group``, ``groups`` and groups the stream already has are read
    create_groups: bool = False


def check_streams_options(o: RedisStreamsOptions) -> None:
    """Range and consistency checks.

    Raises:
        ConfigurationError: naming ``options.<field>``.
    """
    if o.claim_min_idle is not None:
        if o.claim_min_idle <= 0:
            raise ConfigurationError("options.claim_min_idle", "must be > 0")
        if o.visibility_timeout != 30.0 and o.visibility_timeout != o.claim_min_idle:
            raise ConfigurationError(
                "options.claim_min_idle",
                f"conflicts with visibility_timeout ({float(o.visibility_timeout)}s); "
                "they are aliases: set one",
            )
    for field, value in (("claim_min_idle", o.claim_min_idle), ("visibility_timeout", o.visibility_timeout)):
        if value is not None and value > MAX_LEASE_SECONDS:
            raise ConfigurationError(f"options.{field}", f"must be at most {MAX_LEASE_SECONDS:.0f} seconds")
    if o.claim_count < 1:
        raise ConfigurationError("options.claim_count", "must be >= 1")
    if o.max_length < 0:
        raise ConfigurationError("options.max_length", "must be >= 0 (0 = no length bound)")
    if o.stream_name is not None and (not o.stream_name or set("{}\r\n\x00 ") & set(o.stream_name)):
        raise ConfigurationError(
            "options.stream_name", "must be non-empty, without braces or whitespace (the queue is the tag)"
        )
    for field, name in [("consumer_group", o.consumer_group), ("consumer_name", o.consumer_name)] + [
        (f"groups[{i}]", g) for i, g in enumerate(o.groups)
    ]:
        if name is not None and (not name or SEP in name or "\t" in name):
            raise ConfigurationError(f"options.{field}", f"invalid name {name!r}")


def lease_length(o: RedisStreamsOptions) -> float:
    """The default lease length in seconds: ``claim_min_idle``, else ``visibility_timeout``."""
    return float(o.claim_min_idle or o.visibility_timeout)


def default_consumer_name() -> str:
    """A consumer name unique to this process and backend instance."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

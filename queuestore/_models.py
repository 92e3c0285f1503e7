"""Option, capability, stats, health and config models shared by every backend."""

from __future__ import annotations

import enum
import time
from datetime import timedelta
from typing import Annotated, Any

import msgspec

from queuestore._durations import Seconds, to_seconds
from queuestore._job import JobState
from queuestore._redact import is_secret_key, redact, redact_url, remember_secret, url_secrets
from queuestore.errors import ConfigurationError, InvalidJobError

__all__ = [
    "BackendCapabilities",
    "BackendConfig",
    "BackendStats",
    "ConnectionPoolStats",
    "DefaultsConfig",
    "DequeueOptions",
    "HealthLevel",
    "HealthStatus",
    "IterOptions",
]


class DequeueOptions(msgspec.Struct, kw_only=True):
    """How to dequeue.

    Attributes:
        timeout: how long to wait for a job (seconds or timedelta); 0 = don't wait.
            Never "forever": a wait is a loop of short, finite blocking calls.
        consumer_id: who takes the lease (streams: the consumer name).
        consumer_group: streams: the group to read with (overrides the config).
        count: how many jobs ``dequeue_many`` may return (``dequeue`` takes one).
        visibility_timeout: lease length for these jobs, overriding the backend option.
    """

    timeout: float | timedelta = 0.0
    consumer_id: str | None = None
    consumer_group: str | None = None
    count: int = 1
    visibility_timeout: float | timedelta | None = None

    def timeout_seconds(self) -> float:
        """The timeout in seconds. Raises InvalidJobError when negative."""
        try:
            return to_seconds(self.timeout, "timeout")
        except ConfigurationError as exc:
            raise InvalidJobError("timeout", exc.message) from exc

    def lease_seconds(self, default: float) -> float:
        """The lease length in seconds. Raises InvalidJobError when not > 0."""
        if self.visibility_timeout is None:
            return default
        try:
            return to_seconds(self.visibility_timeout, "visibility_timeout", allow_zero=False)
        except ConfigurationError as exc:
            raise InvalidJobError("visibility_timeout", exc.message) from exc

    def checked_count(self) -> int:
        """The count, checked to be >= 1. Raises InvalidJobError otherwise."""
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise InvalidJobError("count", f"must be an int >= 1, got {self.count!r}")
        return self.count


class IterOptions(msgspec.Struct, kw_only=True):
    """What ``iter`` walks, one page of ``count`` at a time.

    Order is dequeue order for ready jobs (priority, then FIFO), due time for
    delayed ones, death order for dead ones; ``reverse`` walks it backwards.
    ``start_id``/``end_id`` are inclusive positions in that walk: the walk starts
    at the job with ``start_id`` (empty if it is not stored) and stops after the
    job with ``end_id`` (streams also accept entry ids). ``start_time``/``end_time``
    bound ``created_at`` (inclusive start, exclusive end). ``states`` selects which states to walk
    (default: ready then delayed; streams' replay also walks retained entries).

    Attributes:
        start_id: the walk starts at the job with this id (inclusive).
        end_id: the walk stops after the job with this id (inclusive).
        start_time: only jobs created at or after this time (epoch seconds).
        end_time: only jobs created before this time (epoch seconds).
        count: jobs per page, 1..10000 (one round trip each).
        reverse: walk backwards.
        states: the states to walk, in this order.
    """

    start_id: str | None = None
    end_id: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    count: int = 100
    reverse: bool = False
    states: tuple[JobState, ...] = (JobState.READY, JobState.DELAYED)

    def checked_count(self) -> int:
        """The page size, checked to be 1..10000. Raises InvalidJobError otherwise."""
        if isinstance(self.count, bool) or not isinstance(self.count, int) or not 1 <= self.count <= 10_000:
            raise InvalidJobError("count", f"must be an int in 1..10000, got {self.count!r}")
        return self.count


class BackendCapabilities(msgspec.Struct, kw_only=True, frozen=True):
    """What a backend, on the server it is connected to, really supports."""

    atomic_ack: bool = False
    consumer_groups: bool = False
    replay: bool = False
    idempotent_enqueue: bool = False
    transactions: bool = False
    persistence: bool = False
    clustering: bool = False
    time_to_live: bool = False
    prioritization: bool = False
    batch_operations: bool = False


class ConnectionPoolStats(msgspec.Struct, kw_only=True):
    """Connections of the real pool: in use, idle, and the configured maximum."""

    active: int = 0
    idle: int = 0
    max: int = 0


class BackendStats(msgspec.Struct, kw_only=True):
    """A snapshot of a backend's queue and its recent activity.

    ``queue_depth`` counts ready jobs only; ``delayed``, ``in_flight`` and ``dead``
    count the other states. Rates are per second over the metrics window;
    ``error_rate`` is a ratio (errors / operations) over the same window;
    latencies are milliseconds.
    """

    backend: str = ""
    queue: str = ""
    queue_depth: int = 0
    delayed: int = 0
    in_flight: int = 0
    dead: int = 0
    enqueue_rate: float = 0.0
    dequeue_rate: float = 0.0
    ack_rate: float = 0.0
    error_rate: float = 0.0
    avg_latency_ms: float = 0.0
    p99_latency_ms: float = 0.0
    total_enqueued: int = 0
    total_dequeued: int = 0
    total_acked: int = 0
    total_nacked: int = 0
    total_dead_lettered: int = 0
    total_expired: int = 0
    total_dead_dropped: int = 0
    total_errors: int = 0
    stream_length: int | None = None
    consumer_lag: int | None = None
    oldest_pending_age_s: float | None = None
    connection_pool: ConnectionPoolStats | None = None
    window_seconds: float = 0.0
    timestamp: float = msgspec.field(default_factory=time.time)


class HealthLevel(enum.StrEnum):
    """How healthy a backend is: the ``status`` of a :class:`HealthStatus` report."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


class HealthStatus(msgspec.Struct, kw_only=True):
    """The report of a health check: its level (``status``) and, when not healthy, why (``message``)."""

    status: HealthLevel
    message: str = ""
    latency_ms: float | None = None
    server: str | None = None
    details: dict[str, str] = msgspec.field(default_factory=dict)
    checked_at: float = msgspec.field(default_factory=time.time)


class BackendConfig(msgspec.Struct, kw_only=True):
    """The generic description of one backend, as in the YAML ``backends:`` map.

    A backend factory turns ``options`` into its own typed options (unknown or
    mistyped options are a ConfigurationError naming ``options.<field>``).
    ``queue`` is the queue the backend serves (the manager sets it); when unset,
    the backend serves ``name`` (or ``"default"``). The repr never shows a password.

    Attributes:
        type: a backend type of the registry (``memory``, ``redis-lists``...).
        name: the backend's name (its key in ``backends:``).
        url: the server (``redis://``, ``rediss://`` for TLS, ``unix://``); none for memory.
        database: the database number; must agree with the URL's.
        queue: the queue this backend serves (the manager sets it).
        cluster_mode: connect to a Redis Cluster.
        cluster_addrs: ``host:port`` seed nodes of the cluster (or give a ``url``).
        options: the type's own options (see the configuration reference).
    """

    type: str
    name: str = ""
    url: str = ""
    database: int | None = None
    queue: str | None = None
    cluster_mode: bool = False
    cluster_addrs: list[str] = msgspec.field(default_factory=list)
    options: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        for secret in url_secrets(self.url):
            remember_secret(secret)
        for addr in self.cluster_addrs if isinstance(self.cluster_addrs, list) else ():
            for secret in url_secrets(addr):
                remember_secret(secret)
        if isinstance(self.options, dict):
            for key, value in self.options.items():
                if isinstance(key, str) and is_secret_key(key):
                    remember_secret(value)

    def queue_name(self) -> str:
        """The queue this backend serves: ``queue``, else ``name``, else ``"default"``.

        Raises:
            ConfigurationError: ``queue`` is set to an empty string (leave it unset to
                serve ``name``).
        """
        if self.queue is not None and not self.queue:
            raise ConfigurationError("queue", "must not be empty (leave it unset to serve the name)")
        return self.queue or self.name or "default"

    def redacted(self) -> BackendConfig:
        """A copy fit to show: the URL's and the addresses' passwords and every secret
        option (``password``, ``sentinel_password``, ``token``...) replaced by ``***``."""
        return msgspec.structs.replace(
            self,
            url=redact_url(self.url) if isinstance(self.url, str) else self.url,
            cluster_addrs=[redact_url(a) if isinstance(a, str) else a for a in self.cluster_addrs],
            options={k: ("***" if is_secret_key(str(k)) else v) for k, v in self.options.items()},
        )

    def __repr__(self) -> str:
        shown = self.redacted()
        return redact(
            f"BackendConfig(type={shown.type!r}, name={shown.name!r}, url={shown.url!r}, "
            f"database={shown.database!r}, queue={shown.queue!r}, cluster_mode={shown.cluster_mode!r}, "
            f"cluster_addrs={shown.cluster_addrs!r}, options={shown.options!r})"
        )

    __str__ = __repr__


class DefaultsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The ``defaults:`` section: the default backend and the connection defaults.

    ``apply_defaults`` turns these into per-type backend options (see
    ``docs/configuration.md``): ``pool_size`` -> ``max_connections``
    (x2 for keydb, x3 for dragonfly), ``timeout`` -> ``conn_timeout``,
    ``read_timeout`` / ``write_timeout`` / ``idle_timeout`` / ``max_retries`` as
    named, ``batch_size`` -> ``pipeline_size`` (keydb; x2 for dragonfly).

    Attributes:
        backend: a backend name, or a backend type meaning "the one backend of that type".
        max_retries: reconnect attempts (``max_retries`` of the Redis types).
        timeout: connect timeout (``conn_timeout``).
        batch_size: ``pipeline_size`` of keydb (x2 for dragonfly).
        pool_size: connections per backend (``max_connections``; x2 keydb, x3 dragonfly).
        idle_timeout: ``idle_timeout`` of the Redis types.
        read_timeout: ``read_timeout`` of redis-lists and redis-streams.
        write_timeout: ``write_timeout`` of redis-lists and redis-streams.
    """

    backend: str = ""
    max_retries: Annotated[int, msgspec.Meta(ge=0)] = 3
    timeout: Seconds = Seconds(30.0)
    batch_size: Annotated[int, msgspec.Meta(ge=1)] = 100
    pool_size: Annotated[int, msgspec.Meta(ge=1)] = 10
    idle_timeout: Seconds = Seconds(300.0)
    read_timeout: Seconds = Seconds(1.0)
    write_timeout: Seconds = Seconds(1.0)

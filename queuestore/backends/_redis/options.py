"""The options every Redis-protocol backend shares (on top of the connection's), and their checks."""

from __future__ import annotations

from typing import Literal

from queuestore._backoff import BackoffOption, check_backoff
from queuestore._durations import OptionalSeconds, Seconds
from queuestore._retention import DEFAULT_DEAD_MAX, DEFAULT_DEAD_RETENTION, DeadMax, check_dead_max
from queuestore.backends._redis.settings import RedisConnectionOptions
from queuestore.errors import ConfigurationError

__all__ = ["RedisBackendOptions", "check_backend_options"]


class RedisBackendOptions(RedisConnectionOptions, kw_only=True, forbid_unknown_fields=True):
    """Options common to the Redis backends (on top of the connection options).

    Attributes:
        key_prefix: prefix of every key; a queue's keys are ``<key_prefix>{<queue>}:...``
            (the queue is the hash tag). No braces.
        visibility_timeout: lease length of a dequeued job (``DequeueOptions.visibility_timeout``
            overrides it per call); an expired lease is reclaimed.
        reclaim_interval: period of the maintenance loop (reclaim expired leases, promote
            due delayed jobs).
        reclaim_batch: jobs one reclaim or promote step handles per script call.
        idempotency_window: how long an ``idempotency_key`` dedups other job ids.
        encoding: wire format of job bodies.
        compression: zlib-compress bodies from ``compression_threshold`` bytes (marked, so
            uncompressed entries still decode).
        compression_threshold: smallest body compressed when ``compression`` is on.
        pipeline_size: script calls sent per round trip by batch operations.
        strict_keys: run every script under a checker that fails on any key not passed in
            KEYS (tests).
        require_noeviction: refuse to open when the server's ``maxmemory-policy`` is not
            ``noeviction`` (health reports it either way).
        wait_for_replicas: after each durable write (enqueue, ack, migration copy), wait
            until this many replicas acknowledged it (``WAIT``); 0 = don't wait.
        wait_for_fsync: after each durable write, wait until the server's AOF fsynced it
            (``WAITAOF``, or nothing where every write is fsynced: ``appendfsync always``).
        wait_timeout: how long such a wait may take before the call raises
            ``OperationTimeoutError`` (the write was applied).
        call_margin: how much longer than its own ``timeout`` a ``dequeue`` /
            ``dequeue_many`` may take in all (retries, reconnects and new pooled connections
            included; a ``dequeue_many`` has 0.2 ms more for each job it asks for, the
            server's time to lease them): after ``timeout`` + half the margin it stops and raises
            ``OperationTimeoutError``, handing back in the other half what it may have leased
            (if the server does not answer, those leases expire and the jobs are redelivered).
        health_timeout: longest wait for the health check's PING; no answer is ``unhealthy``.
        health_latency_threshold: a slower PING makes health ``degraded``.
        dead_retention: dead jobs older than this are dropped by the maintenance loop
            (``0`` or ``none``: kept).
        dead_max: past this many dead jobs the oldest are dropped by the maintenance loop
            (``0`` or ``none``: no limit).
        retry_backoff: the delay of a job nacked with ``requeue`` and no ``delay``
            (``{base, factor, max, jitter}``); ``none``: ready at once.
    """

    key_prefix: str = "queue:"
    visibility_timeout: Seconds = Seconds(30.0)
    reclaim_interval: Seconds = Seconds(1.0)
    reclaim_batch: int = 100
    idempotency_window: Seconds = Seconds(86400.0)
    encoding: Literal["msgpack", "json"] = "msgpack"
    compression: bool = False
    compression_threshold: int = 1024
    pipeline_size: int = 100
    strict_keys: bool = False
    require_noeviction: bool = False
    wait_for_replicas: int = 0
    wait_for_fsync: bool = False
    wait_timeout: Seconds = Seconds(0.5)
    call_margin: Seconds = Seconds(1.0)
    health_timeout: Seconds = Seconds(1.0)
    health_latency_threshold: Seconds = Seconds(0.25)
    dead_retention: OptionalSeconds = DEFAULT_DEAD_RETENTION
    dead_max: DeadMax = DEFAULT_DEAD_MAX
    retry_backoff: BackoffOption = None
    #: group commit of concurrent per-job ``dequeue()`` / ``ack()`` / ``enqueue()`` calls: a
    #: call with nothing of its kind in flight goes out at once; calls arriving meanwhile go
    #: together as one batch script when it returns (each keeps its own job, lease, result
    #: and error)
    coalesce: bool = True


def check_backend_options(options: RedisBackendOptions) -> None:
    """Range checks of the common options.

    Raises:
        ConfigurationError: naming ``options.<field>``.
    """
    if options.visibility_timeout <= 0:
        raise ConfigurationError("options.visibility_timeout", "must be > 0")
    if options.reclaim_interval <= 0:
        raise ConfigurationError("options.reclaim_interval", "must be > 0")
    if options.block_timeout <= 0:
        raise ConfigurationError("options.block_timeout", "must be > 0 (blocking is always finite)")
    for name in ("reclaim_batch", "pipeline_size"):
        if getattr(options, name) < 1:
            raise ConfigurationError(f"options.{name}", "must be >= 1")
    if options.compression_threshold < 0:
        raise ConfigurationError("options.compression_threshold", "must be >= 0")
    if options.wait_for_replicas < 0:
        raise ConfigurationError("options.wait_for_replicas", "must be >= 0")
    for name in ("call_margin", "health_timeout", "health_latency_threshold"):
        if getattr(options, name) <= 0:
            raise ConfigurationError(f"options.{name}", "must be > 0")
    if options.wait_timeout <= 0:
        raise ConfigurationError("options.wait_timeout", "must be > 0 (WAIT 0 would block forever)")
    check_dead_max(options.dead_max)
    check_backoff(options.retry_backoff)
    if "{" in options.key_prefix or "}" in options.key_prefix:
        raise ConfigurationError("options.key_prefix", "must not contain braces (the queue is the hash tag)")

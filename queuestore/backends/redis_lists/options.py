"""The options of the redis-lists backend."""

from __future__ import annotations

from queuestore.backends._redis.options import RedisBackendOptions

__all__ = ["RedisListsOptions"]


class RedisListsOptions(RedisBackendOptions, kw_only=True, forbid_unknown_fields=True):
    """Options of the redis-lists backend: the common Redis options plus these.

    Attributes:
        batch_size: jobs (or ids) per script call in ``enqueue_many``, ``ack_many``,
            ``import_jobs``, ``get_jobs`` and ``migration_release``; calls are pipelined
            ``pipeline_size`` per round trip.
        bury_limit: garbage entries (undecodable, or with a missing body) one dequeue
            may dead-letter before it returns, so garbage never blocks the queue.
    """

    batch_size: int = 100
    bury_limit: int = 16

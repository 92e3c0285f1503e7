"""The ``redis-streams`` backend: a queue on a Redis stream with consumer groups."""

from queuestore.backends.redis_streams.backend import RedisStreamsBackend
from queuestore.backends.redis_streams.factory import RedisStreamsFactory
from queuestore.backends.redis_streams.options import RedisStreamsOptions

__all__ = ["RedisStreamsBackend", "RedisStreamsFactory", "RedisStreamsOptions"]

"""The ``redis-lists`` backend: the default, on standalone Redis and Redis Cluster.

Registered as ``queuestore.backends.redis_lists:RedisListsFactory``.
"""

from queuestore.backends.redis_lists.backend import RedisListsBackend
from queuestore.backends.redis_lists.factory import RedisListsFactory
from queuestore.backends.redis_lists.options import RedisListsOptions

__all__ = ["RedisListsBackend", "RedisListsFactory", "RedisListsOptions"]

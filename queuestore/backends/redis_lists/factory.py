"""The factory of the redis-lists backend (type ``redis-lists``): its checks, then an open backend."""

from __future__ import annotations

from queuestore._models import BackendConfig
from queuestore.abc import BackendFactory
from queuestore.backends._redis.connection import check_connection_config
from queuestore.backends._redis.keys import validate_queue_name
from queuestore.backends._redis.options import check_backend_options
from queuestore.backends.redis_lists.backend import RedisListsBackend
from queuestore.backends.redis_lists.options import RedisListsOptions
from queuestore.errors import ConfigurationError

__all__ = ["RedisListsFactory"]

#: one script's sweep is bounded by ``reclaim_batch`` (and by Lua's unpack limit)
MAX_RECLAIM_BATCH = 5000
MAX_BATCH_SIZE = 10_000


class RedisListsFactory(BackendFactory[RedisListsOptions]):
    """Creates :class:`RedisListsBackend` instances (type ``redis-lists``)."""

    options_type = RedisListsOptions

    def check(self, config: BackendConfig, options: RedisListsOptions) -> None:
        """Range checks of the options, the URL / cluster settings and the queue name.

        Raises:
            ConfigurationError: naming the field.
        """
        check_backend_options(options)
        check_connection_config(config, options)
        validate_queue_name(config.queue_name(), "queue")
        if not 1 <= options.batch_size <= MAX_BATCH_SIZE:
            raise ConfigurationError("options.batch_size", f"must be in 1..{MAX_BATCH_SIZE}")
        if options.bury_limit < 1:
            raise ConfigurationError("options.bury_limit", "must be >= 1")
        if options.reclaim_batch > MAX_RECLAIM_BATCH:
            raise ConfigurationError(
                "options.reclaim_batch", f"must be <= {MAX_RECLAIM_BATCH} for redis-lists"
            )

    async def create(self, config: BackendConfig) -> RedisListsBackend:
        """Make a backend and open it (connect, probe, load scripts).

        Raises:
            ConfigurationError: the config is invalid.
            ConnectionFailedError: the server is unreachable.
        """
        backend = RedisListsBackend(config, self.parse(config))
        await backend.open()
        return backend

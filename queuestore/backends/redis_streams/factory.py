"""The factory of the ``redis-streams`` type."""

from __future__ import annotations

from queuestore._models import BackendConfig
from queuestore.abc import BackendFactory
from queuestore.backends._redis.keys import validate_queue_name
from queuestore.backends._redis.options import check_backend_options
from queuestore.backends.redis_streams.backend import RedisStreamsBackend
from queuestore.backends.redis_streams.options import RedisStreamsOptions, check_streams_options

__all__ = ["RedisStreamsFactory"]


class RedisStreamsFactory(BackendFactory[RedisStreamsOptions]):
    """Creates :class:`RedisStreamsBackend` instances (type ``redis-streams``)."""

    options_type = RedisStreamsOptions

    def check(self, config: BackendConfig, options: RedisStreamsOptions) -> None:
        """Range checks of the common and streams options.

        Raises:
            ConfigurationError: naming the field.
        """
        check_backend_options(options)
        check_streams_options(options)
        validate_queue_name(config.queue_name())

    async def create(self, config: BackendConfig) -> RedisStreamsBackend:
        """Make and open a backend.

        Raises:
            ConfigurationError, ConnectionFailedError.
        """
        backend = RedisStreamsBackend(config, self.parse(config))
        await backend.open()
        return backend

"""The factory of the memory backend: parses and checks a config, creates the backend."""

from __future__ import annotations

from queuestore._args import check_queue_name
from queuestore._models import BackendConfig
from queuestore.abc import BackendFactory
from queuestore.backends.memory.backend import MemoryBackend
from queuestore.backends.memory.options import MemoryOptions
from queuestore.errors import ConfigurationError

__all__ = ["MemoryBackendFactory"]

#: options that must be a positive duration
_POSITIVE = ("visibility_timeout", "reclaim_interval", "metrics_window")


class MemoryBackendFactory(BackendFactory[MemoryOptions]):
    """Creates :class:`MemoryBackend` instances (backend type ``memory``)."""

    options_type = MemoryOptions

    def check(self, config: BackendConfig, options: MemoryOptions) -> None:
        """Reject zero lease/reclaim durations, a non-memory URL and a bad queue name.

        Raises:
            ConfigurationError: naming the field.
        """
        check_queue_name(config.queue_name())
        for name in _POSITIVE:
            if getattr(options, name) <= 0:
                raise ConfigurationError(f"options.{name}", "must be > 0")
        if config.url and not config.url.startswith("memory://"):
            raise ConfigurationError("url", "the memory backend takes no URL (or 'memory://')")
        if config.cluster_mode:
            raise ConfigurationError("cluster_mode", "the memory backend has no cluster mode")

    async def create(self, config: BackendConfig) -> MemoryBackend:
        """Make a memory backend and open it.

        Raises:
            ConfigurationError: the config is invalid (the field is named).
        """
        backend = MemoryBackend(config, self.parse(config))
        await backend.open()
        return backend

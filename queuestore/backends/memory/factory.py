"""The factory of the memory backend: parses and checks a config, creates the backend."""

from __future__ import annotations

from queuestore._models import BackendConfig
from queuestore.abc import BackendFactory
from queuestore.backends.memory.backend import MemoryBackend
from queuestore.backends.memory.options import MemoryOptions, check_memory_config

__all__ = ["MemoryBackendFactory"]


class MemoryBackendFactory(BackendFactory[MemoryOptions]):
    """Creates :class:`MemoryBackend` instances (backend type ``memory``)."""

    options_type = MemoryOptions

    def check(self, config: BackendConfig, options: MemoryOptions) -> None:
        """Reject zero lease/reclaim durations, a non-memory URL and cluster mode.

        Raises:
            ConfigurationError: naming the field.
        """
        check_memory_config(config, options)

    async def create(self, config: BackendConfig) -> MemoryBackend:
        """Make a memory backend and open it.

        Raises:
            ConfigurationError: the config is invalid (the field is named).
        """
        backend = MemoryBackend(config, self.parse(config))
        await backend.open()
        return backend

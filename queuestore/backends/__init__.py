"""Built-in backends, one package or module each, imported lazily by type name."""

from __future__ import annotations

__all__ = ["BUILTIN_BACKENDS"]

#: backend type -> "module:FactoryClass"
BUILTIN_BACKENDS: dict[str, str] = {
    "memory": "queuestore.backends.memory:MemoryBackendFactory",
    "redis-lists": "queuestore.backends.redis_lists:RedisListsFactory",
    "redis-streams": "queuestore.backends.redis_streams:RedisStreamsFactory",
    "keydb": "queuestore.backends.keydb:KeyDBFactory",
    "dragonfly": "queuestore.backends.dragonfly:DragonflyFactory",
}

"""Built-in backends, one module each. Imported lazily by type name."""

from __future__ import annotations

import importlib
from typing import Any

from queuestore.errors import BackendNotFoundError

__all__ = ["BUILTIN_BACKENDS", "load_builtin_factory"]

#: backend type -> "module:FactoryClass"
BUILTIN_BACKENDS: dict[str, str] = {
    "memory": "queuestore.backends.memory:MemoryBackendFactory",
    "redis-lists": "queuestore.backends.redis_lists:RedisListsFactory",
    "redis-streams": "queuestore.backends.redis_streams:RedisStreamsFactory",
    "keydb": "queuestore.backends.keydb:KeyDBFactory",
    "dragonfly": "queuestore.backends.dragonfly:DragonflyFactory",
}


def load_builtin_factory(backend_type: str) -> Any:
    """Import and instantiate the factory of a built-in backend type.

    Raises:
        BackendNotFoundError: not a built-in type.
    """
    try:
        path = BUILTIN_BACKENDS[backend_type]
    except KeyError:
        raise BackendNotFoundError(f"unknown backend type {backend_type!r}") from None
    module_name, _, cls_name = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, cls_name)()

"""``BackendRegistry``: backend type name -> factory, and the process-wide ``default_registry()``.

The built-in types (``memory``, ``redis-lists``, ``redis-streams``, ``keydb``,
``dragonfly``) are registered *lazily*: their module is imported the first time
the type is used, so importing queuestore never imports redis, and a built-in
whose module cannot be imported is an error only when that type is used.
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from queuestore._models import BackendConfig, DefaultsConfig
from queuestore.abc import BackendFactory, QueueBackend
from queuestore.backends import BUILTIN_BACKENDS
from queuestore.errors import BackendExistsError, BackendNotFoundError, ConfigurationError

__all__ = ["BackendRegistry", "default_registry"]


class BackendRegistry:
    """Maps backend type names to factories.

    ``BackendRegistry()`` is empty; ``BackendRegistry(builtins=True)`` (and
    :func:`default_registry`) holds the five built-in types, loaded lazily.
    """

    def __init__(self, *, builtins: bool = False) -> None:
        self._factories: dict[str, BackendFactory[Any]] = {}
        self._lazy: dict[str, str] = dict(BUILTIN_BACKENDS) if builtins else {}
        self._lock = threading.Lock()

    def register(self, name: str, factory: BackendFactory[Any], *, replace: bool = False) -> None:
        """Register ``factory`` under the type name ``name``.

        Raises:
            BackendExistsError: ``name`` is registered already and ``replace`` is false.
            TypeError: ``factory`` is not a BackendFactory or ``name`` is not a non-empty str.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"backend type name must be a non-empty str, got {name!r}")
        if not isinstance(factory, BackendFactory):
            raise TypeError(f"factory must be a BackendFactory, got {type(factory).__name__}")
        with self._lock:
            self._check_free(name, replace)
            self._lazy.pop(name, None)
            self._factories[name] = factory

    def register_lazy(self, name: str, path: str, *, replace: bool = False) -> None:
        """Register a factory by import path (``"package.module:FactoryClass"``), imported on first use.

        Raises:
            BackendExistsError: ``name`` is registered already and ``replace`` is false.
            TypeError: ``path`` is not of the form ``"module:Class"``.
        """
        module_name, sep, cls_name = path.partition(":") if isinstance(path, str) else ("", "", "")
        if not isinstance(name, str) or not name or not (module_name and sep and cls_name):
            raise TypeError(f"expected a type name and 'module:Class', got {name!r}, {path!r}")
        with self._lock:
            self._check_free(name, replace)
            self._factories.pop(name, None)
            self._lazy[name] = path

    def _check_free(self, name: str, replace: bool) -> None:
        if not replace and (name in self._factories or name in self._lazy):
            raise BackendExistsError(f"backend type {name!r} is already registered")

    def unregister(self, name: str) -> None:
        """Forget a backend type.

        Raises:
            BackendNotFoundError: no such type.
        """
        with self._lock:
            if self._factories.pop(name, None) is None and self._lazy.pop(name, None) is None:
                raise BackendNotFoundError(f"unknown backend type {name!r}")

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._factories or name in self._lazy)

    def list(self) -> list[str]:
        """The registered type names, sorted."""
        return sorted({*self._factories, *self._lazy})

    def factory(self, name: str) -> BackendFactory[Any]:
        """The factory of type ``name``, importing a lazily registered one on first use.

        Raises:
            BackendNotFoundError: no such type, or its module cannot be imported
                (the message names the missing module; ``__cause__`` is the ImportError).
        """
        found = self._factories.get(name) if isinstance(name, str) else None
        if found is not None:
            return found
        if name not in self:
            known = ", ".join(self.list()) or "none"
            raise BackendNotFoundError(f"unknown backend type {name!r} (registered: {known})")
        path = self._lazy.get(name)
        if path is None:  # loaded by another thread meanwhile
            return self._factories[name]
        module_name, _, cls_name = path.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise BackendNotFoundError(
                f"backend type {name!r} is registered but not available: "
                f"cannot import {module_name} (missing module {exc.name!r})"
            ) from exc
        made = getattr(module, cls_name)()
        if not isinstance(made, BackendFactory):  # pragma: no cover - a broken built-in
            raise TypeError(f"{path} is not a BackendFactory")
        with self._lock:
            if self._lazy.get(name) == path:
                del self._lazy[name]
                self._factories[name] = made
            return self._factories.get(name, made)

    def is_loadable(self, name: str) -> bool:
        """True if ``name`` is registered and its factory can be loaded (imports it if needed).

        Only a missing module counts as "not loadable"; any other import error propagates.
        """
        if name not in self:
            return False
        try:
            self.factory(name)
        except BackendNotFoundError as exc:
            if isinstance(exc.__cause__, ModuleNotFoundError):
                return False
            raise  # pragma: no cover - registered a moment ago, unregistered since
        return True

    def option_names(self, name: str) -> frozenset[str] | None:
        """The option names type ``name`` accepts; None when its factory cannot be loaded."""
        if not self.is_loadable(name):
            return None
        return self.factory(name).option_names()

    def option_defaults(self, name: str, defaults: DefaultsConfig) -> dict[str, Any]:
        """The options type ``name``'s factory takes from ``defaults`` (none when it cannot be loaded)."""
        if not self.is_loadable(name):
            return {}
        return self.factory(name).option_defaults(defaults)

    def validate(self, name: str, config: BackendConfig) -> None:
        """Check that ``config`` can make a backend of type ``name``.

        Raises:
            BackendNotFoundError: no such type (or its module cannot be imported).
            ConfigurationError: naming the field (``type``, ``url``, ``options.<name>``...).
        """
        factory = self.factory(name)
        _check_type(name, config)
        factory.validate(config)

    async def create(self, name: str, config: BackendConfig) -> QueueBackend:
        """Create and open a backend of type ``name``.

        Raises:
            BackendNotFoundError: no such type (or its module cannot be imported).
            ConfigurationError: the config is invalid.
            ConnectionFailedError: the server is unreachable.
        """
        factory = self.factory(name)
        _check_type(name, config)
        return await factory.create(config)

    def __repr__(self) -> str:
        return f"<BackendRegistry types={self.list()!r}>"


def _check_type(name: str, config: BackendConfig) -> None:
    if not isinstance(config, BackendConfig):
        raise ConfigurationError("", f"expected a BackendConfig, got {type(config).__name__}")
    if config.type != name:
        raise ConfigurationError("type", f"config is for backend type {config.type!r}, not {name!r}")


_default: BackendRegistry | None = None
_default_lock = threading.Lock()


def default_registry() -> BackendRegistry:
    """The process-wide registry holding the five built-in backend types (lazily loaded)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = BackendRegistry(builtins=True)
    return _default

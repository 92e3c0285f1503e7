"""The typed storage configuration: ``StorageConfig`` and its ``apply_defaults`` / ``validate``.

YAML text becomes a ``StorageConfig`` in :mod:`queuestore._config_loader`
(``load_config``, ``load_config_from_file``); this module holds the models and
what is done with them once loaded. Every error names the dotted field path
(``backends.analytics.options.max_length``, ``queues.default.backend``...).
"""

from __future__ import annotations

from typing import Any, Self

import msgspec

from queuestore._config_defaults import type_defaults
from queuestore._config_rules import alias_given, check_backend
from queuestore._models import BackendConfig, DefaultsConfig
from queuestore._redact import redact
from queuestore._registry import BackendRegistry, default_registry
from queuestore.errors import BackendNotFoundError, ConfigurationError, QueueNotFoundError

__all__ = ["QueueConfig", "StorageConfig"]


class QueueConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One entry of ``queues:``.

    Attributes:
        backend: the name of a backend in ``backends:``; empty means the default
            backend (``defaults.backend``), which ``apply_defaults`` fills in.
    """

    backend: str = ""


class StorageConfig(msgspec.Struct, kw_only=True):
    """A whole storage configuration: ``backends``, ``queues`` and ``defaults``.

    Build one with :func:`~queuestore.load_config` / :func:`~queuestore.load_config_from_file`,
    then ``apply_defaults()`` and ``validate()``. The repr never shows a password.
    """

    backends: dict[str, BackendConfig] = msgspec.field(default_factory=dict)
    queues: dict[str, QueueConfig] = msgspec.field(default_factory=dict)
    defaults: DefaultsConfig = msgspec.field(default_factory=DefaultsConfig)

    # -- defaults -------------------------------------------------------------------
    def apply_defaults(self, registry: BackendRegistry | None = None) -> Self:
        """Fill unset options from ``defaults`` (per backend type) and empty queue backends.

        Only options the operator did not set, and only option names the type's
        factory accepts, are filled (when the factory cannot be loaded, the
        connection defaults are filled as they are). Queues without a backend get
        the default backend when it resolves. Never raises: problems are left for
        :meth:`validate` to report. Idempotent.

        Returns:
            self, changed in place.
        """
        reg = registry if registry is not None else default_registry()
        for name, backend in self.backends.items():
            if not backend.name:
                backend.name = name
            fill = type_defaults(reg, backend.type, self.defaults)
            if not fill or not isinstance(backend.options, dict):
                continue
            accepted = reg.option_names(backend.type)
            for key, value in fill.items():
                if key in backend.options or alias_given(key, backend.options):
                    continue  # set by the operator, maybe under redis-py's name
                if accepted is None or key in accepted:
                    backend.options[key] = value
        try:
            default = self.default_backend()
        except ConfigurationError:
            default = None
        if default is not None:
            for queue in self.queues.values():
                if not queue.backend:
                    queue.backend = default
        return self

    def default_backend(self) -> str | None:
        """The name of the default backend, or None when there is none.

        ``defaults.backend`` names a backend, or a backend type meaning the one
        backend of that type. Without ``defaults.backend``, a config with exactly
        one backend defaults to it.

        Raises:
            ConfigurationError: field ``defaults.backend``: no such backend, or a
                type with zero or several backends.
        """
        wanted = self.defaults.backend
        if not wanted:
            return next(iter(self.backends)) if len(self.backends) == 1 else None
        if wanted in self.backends:
            return wanted
        of_type = [name for name, b in self.backends.items() if b.type == wanted]
        if len(of_type) == 1:
            return of_type[0]
        if of_type:
            raise ConfigurationError(
                "defaults.backend",
                f"type {wanted!r} is ambiguous: backends {', '.join(sorted(of_type))} have it; name one",
            )
        raise ConfigurationError("defaults.backend", f"no backend named {wanted!r} and none of that type")

    # -- validation -----------------------------------------------------------------
    def validate(self, registry: BackendRegistry | None = None, *, require_factories: bool = True) -> None:
        """Check the whole configuration; raise on the first problem found.

        Checks, per backend: the type is registered; the generic rules (URL
        parses, database >= 0, cluster addresses, streams names); then the
        type's own factory (unknown options, option types). Then every queue's
        backend exists, and ``defaults`` (the default backend resolves,
        timeouts > 0).

        The factory step needs the type's module. A type that is registered but
        whose module cannot be imported is an error (``backends.<name>.type``)
        unless ``require_factories=False``, which runs only the generic rules
        for it -- meant for checking a config on a machine without that backend.

        Raises:
            ConfigurationError: naming the field path (``backends.<name>.<field>``,
                ``queues.<name>.backend``, ``defaults.<field>``).
        """
        reg = registry if registry is not None else default_registry()
        for name, backend in self.backends.items():
            prefix = f"backends.{name}"
            if not name:
                raise ConfigurationError("backends", "a backend name must not be empty")
            if backend.type not in reg:
                known = ", ".join(reg.list())
                raise ConfigurationError(
                    f"{prefix}.type", f"unknown backend type {backend.type!r} (registered: {known})"
                )
            try:
                check_backend(backend)
                if not reg.is_loadable(backend.type):
                    if require_factories:
                        try:
                            reg.factory(backend.type)
                        except BackendNotFoundError as exc:
                            raise ConfigurationError("type", exc.message) from exc
                    continue
                reg.validate(backend.type, backend)
            except ConfigurationError as exc:
                raise exc.with_prefix(prefix) from exc.__cause__
        for field in ("timeout", "read_timeout", "write_timeout"):
            if getattr(self.defaults, field) <= 0:
                raise ConfigurationError(f"defaults.{field}", "must be > 0")
        default = self.default_backend()
        for qname, queue in self.queues.items():
            if not qname:
                raise ConfigurationError("queues", "a queue name must not be empty")
            target = queue.backend or default
            if not target:
                raise ConfigurationError(
                    f"queues.{qname}.backend", "no backend given and no default backend (defaults.backend)"
                )
            if target not in self.backends:
                raise ConfigurationError(
                    f"queues.{qname}.backend",
                    f"unknown backend {target!r} (configured: {', '.join(self.backends) or 'none'})",
                )

    # -- lookups --------------------------------------------------------------------
    def get_backend_config(self, name: str) -> BackendConfig:
        """A copy of the backend config called ``name`` (its ``name`` set).

        Raises:
            BackendNotFoundError: no backend of that name.
        """
        try:
            found = self.backends[name]
        except (KeyError, TypeError):
            known = ", ".join(self.backends) or "none"
            raise BackendNotFoundError(f"no backend named {name!r} (configured: {known})") from None
        return msgspec.structs.replace(
            found,
            name=found.name or name,
            options=dict(found.options),
            cluster_addrs=list(found.cluster_addrs),
        )

    def get_queue_config(self, name: str) -> QueueConfig:
        """The config of queue ``name``; an unlisted queue gets the default backend.

        Raises:
            QueueNotFoundError: the queue is not listed and there is no default backend.
            ConfigurationError: ``defaults.backend`` does not resolve.
        """
        queue = self.queues.get(name)
        if queue is not None and queue.backend:
            return queue
        default = self.default_backend()
        if default is None:
            raise QueueNotFoundError(f"queue {name!r} is not configured and there is no default backend")
        return QueueConfig(backend=default)

    def backend_config_for_queue(self, queue: str) -> BackendConfig:
        """The backend config that serves ``queue`` (``queue`` set on it).

        Raises:
            QueueNotFoundError: see :meth:`get_queue_config`.
            BackendNotFoundError: the queue names a backend that is not configured.
        """
        return msgspec.structs.replace(
            self.get_backend_config(self.get_queue_config(queue).backend), queue=queue
        )

    def to_builtins(self) -> dict[str, Any]:
        """The config as plain data (durations in seconds), passwords replaced by ``***``.

        Every backend is shown as :meth:`BackendConfig.redacted` shows it.
        """
        shown = msgspec.structs.replace(
            self, backends={name: backend.redacted() for name, backend in self.backends.items()}
        )
        data: dict[str, Any] = msgspec.to_builtins(shown, enc_hook=_plain)
        return data

    def __repr__(self) -> str:
        return redact(
            f"StorageConfig(backends={self.backends!r}, queues={self.queues!r}, defaults={self.defaults!r})"
        )

    __str__ = __repr__


def _plain(value: Any) -> Any:
    if isinstance(value, float):  # Seconds
        return float(value)
    raise NotImplementedError(f"cannot encode {type(value).__name__}")

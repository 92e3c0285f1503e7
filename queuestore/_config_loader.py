"""YAML text -> :class:`StorageConfig`: ``${ENV}`` interpolation and field-path errors.

Loading never raises anything but :class:`~queuestore.ConfigurationError`,
whatever the input: YAML syntax errors, a non-mapping top level, unknown fields,
wrong types, bad durations and missing environment variables all name the field
path where they were found.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import msgspec.yaml

from queuestore._args import validation_path
from queuestore._config import QueueConfig, StorageConfig
from queuestore._durations import duration_dec_hook
from queuestore._models import BackendConfig, DefaultsConfig
from queuestore.errors import ConfigurationError

__all__ = ["config_from_data", "load_config", "load_config_from_file"]

T = TypeVar("T")
_TOP = ("backends", "queues", "defaults")
_BACKEND_FIELDS = ("type", "url", "database", "cluster_mode", "cluster_addrs", "options")
_MAX_NODES = 100_000
_MAX_DEPTH = 32
# "$${" is a literal "${"; "${NAME}" / "${NAME:-default}" a variable; a lone "${" an error
_VAR = re.compile(r"\$(\$\{)|\$\{([^}]*)\}|\$\{")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def load_config_from_file(
    path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None
) -> StorageConfig:
    """Read a YAML storage config from a file (see :func:`load_config`).

    Raises:
        ConfigurationError: the file cannot be read, or its content is invalid.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            "", f"cannot read configuration file {os.fspath(path)!r}: {exc.strerror or exc}"
        ) from exc
    return load_config(data, env=env, source=os.fspath(path))


def load_config(
    text: str | bytes, *, env: Mapping[str, str] | None = None, source: str = ""
) -> StorageConfig:
    """Parse YAML of the shape ``{backends: ..., queues: ..., defaults: ...}``.

    String values may hold ``${NAME}`` (an error naming the field when ``NAME``
    is unset) or ``${NAME:-default}`` (``default`` when unset or empty);
    ``$${`` is a literal ``${``. Interpolation happens after YAML parsing, so a
    secret's characters never change the YAML's meaning. Defaults are not
    applied: call ``apply_defaults()`` and ``validate()`` next.

    Args:
        text: the YAML document.
        env: the variables to interpolate (default: ``os.environ``).
        source: a file name for messages.

    Raises:
        ConfigurationError: naming the field path ("" for the document itself).
    """
    where = f" in {source}" if source else ""
    try:
        data = msgspec.yaml.decode(text)
    except msgspec.DecodeError as exc:
        raise ConfigurationError("", f"invalid YAML{where}: {exc}") from None
    except RecursionError:
        raise ConfigurationError("", f"invalid YAML{where}: nested too deeply") from None
    return config_from_data(data, env=env)


def config_from_data(data: Any, *, env: Mapping[str, str] | None = None) -> StorageConfig:
    """Build a config from already-parsed data (what YAML or JSON decoding returns).

    Raises:
        ConfigurationError: naming the field path.
    """
    if data is None:
        raise ConfigurationError(
            "", "the configuration is empty: expected a mapping (backends, queues, defaults)"
        )
    if not isinstance(data, dict):
        raise ConfigurationError(
            "", f"the top level must be a mapping (backends, queues, defaults), got {_kind(data)}"
        )
    data = _Interpolator(os.environ if env is None else env).walk(data, "", 0)
    for key in data:
        if key not in _TOP:
            raise ConfigurationError(_join("", key), "unknown field (expected backends, queues, defaults)")
    backends: dict[str, BackendConfig] = {}
    for name, entry in _mapping(data.get("backends"), "backends").items():
        prefix = f"backends.{name}"
        if not isinstance(entry, dict):
            raise ConfigurationError(prefix, f"must be a mapping with at least a type, got {_kind(entry)}")
        for key in entry:
            if key not in _BACKEND_FIELDS:
                raise ConfigurationError(
                    _join(prefix, key), f"unknown field (expected {', '.join(_BACKEND_FIELDS)})"
                )
        if "type" not in entry:
            raise ConfigurationError(f"{prefix}.type", "required")
        if entry.get("options", ()) is None:
            entry = {**entry, "options": {}}
        backend = _convert(entry, BackendConfig, prefix)
        backend.name = name
        backends[name] = backend
    queues: dict[str, QueueConfig] = {}
    for name, entry in _mapping(data.get("queues"), "queues").items():
        queues[name] = QueueConfig() if entry is None else _convert(entry, QueueConfig, f"queues.{name}")
    raw_defaults = data.get("defaults")
    defaults = (
        DefaultsConfig() if raw_defaults is None else _convert(raw_defaults, DefaultsConfig, "defaults")
    )
    return StorageConfig(backends=backends, queues=queues, defaults=defaults)


class _Interpolator:
    """Copies the parsed tree, expanding ``${...}`` in strings; bounds size and depth."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.nodes = 0
        self.active: set[int] = set()

    def walk(self, value: Any, path: str, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > _MAX_NODES:
            raise ConfigurationError(
                path, f"too large: more than {_MAX_NODES} values (YAML aliases count each use)"
            )
        if isinstance(value, str):
            return self.expand(value, path)
        if not isinstance(value, dict | list):
            return value
        if depth >= _MAX_DEPTH:
            raise ConfigurationError(path, f"nested more than {_MAX_DEPTH} levels deep")
        if id(value) in self.active:
            raise ConfigurationError(path, "a YAML alias refers to itself")
        self.active.add(id(value))
        try:
            if isinstance(value, dict):
                return {k: self.walk(v, _join(path, k), depth + 1) for k, v in value.items()}
            return [self.walk(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        finally:
            self.active.discard(id(value))

    def expand(self, text: str, path: str) -> str:
        if "$" not in text:
            return text

        def one(m: re.Match[str]) -> str:
            if m.group(1):
                return "${"
            inner = m.group(2)
            if inner is None:
                raise ConfigurationError(path, "unterminated '${' (write '$${' for a literal '${')")
            name, sep, default = inner.partition(":-")
            if not _NAME.match(name):
                raise ConfigurationError(
                    path, f"invalid environment variable name {name[:40]!r} in '${{...}}'"
                )
            if "${" in default:
                raise ConfigurationError(path, f"nested '${{' in the default of ${{{name}}} is not supported")
            value = self.env.get(name)
            if value is None or (sep and not value):
                if sep:
                    return default
                raise ConfigurationError(
                    path, f"environment variable {name} is not set (write ${{{name}:-default}} for a default)"
                )
            return value

        return _VAR.sub(one, text)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _join(path: str, key: Any) -> str:
    if isinstance(key, str):
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


def _mapping(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigurationError(field, f"must be a mapping of names, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str) or not key:
            raise ConfigurationError(_join(field, key), "a name must be a non-empty string")
    return value


def _convert(data: Any, tp: type[T], prefix: str) -> T:
    try:
        return msgspec.convert(data, tp, dec_hook=duration_dec_hook, strict=False)
    except msgspec.ValidationError as exc:
        path, msg = validation_path(str(exc))
        field = f"{prefix}.{path}" if path else prefix
        raise ConfigurationError(field, msg.removeprefix("duration: ")) from None

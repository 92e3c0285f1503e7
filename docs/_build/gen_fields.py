"""Field facts of an options Struct, for the configuration reference.

Each field's name, type, default and unit come from msgspec's struct info; its
description from the ``Attributes:`` section of the class docstring (the class's
own or a base's) or from a ``#:`` comment just above the field in the source.
"""

from __future__ import annotations

import inspect
import re
import textwrap
import types
import typing
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec

from queuestore._durations import OptionalSeconds, Seconds

__all__ = ["FieldDoc", "field_docs", "render_default", "render_type"]

_SECTION = re.compile(r"^(\w[\w ]*):\s*$")
_ENTRY = re.compile(r"^(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")
_FIELD_LINE = re.compile(r"^\s*(\w+)\s*:")
#: int fields measured in something other than "how many"
_INT_UNITS = {"compression_threshold": "bytes", "database": "index", "priority": "0..9"}
#: float fields named like these are points in time
_EPOCH_SUFFIXES = ("_at", "_deadline", "_time")


@dataclass(frozen=True, slots=True)
class FieldDoc:
    """One row of an options table."""

    name: str
    type: str
    default: str
    unit: str
    description: str


def _attributes(cls: type) -> dict[str, str]:
    """The ``Attributes:`` entries of the class docstring (Google style)."""
    doc = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
    found: dict[str, str] = {}
    in_section = False
    current: str | None = None
    for line in doc.splitlines():
        if not line.startswith(" "):
            section = _SECTION.match(line)
            in_section = bool(section) and section is not None and section.group(1) == "Attributes"
            current = None
            continue
        if not in_section:
            continue
        text = line.strip()
        entry = _ENTRY.match(text) if line.startswith("    ") and not line.startswith("     ") else None
        if entry:
            current = entry.group(1)
            found[current] = entry.group(2)
        elif current and text:
            found[current] += " " + text
    return found


def _comments(cls: type) -> dict[str, str]:
    """``#:`` comments written just above a field of the class body."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    found: dict[str, str] = {}
    pending: list[str] = []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        field = _FIELD_LINE.match(line)
        if field and pending:
            found[field.group(1)] = " ".join(pending)
        pending = []
    return found


def _descriptions(cls: type) -> dict[str, str]:
    merged: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if isinstance(klass, type) and issubclass(klass, msgspec.Struct):
            merged.update(_attributes(klass))
            merged.update(_comments(klass))
    return merged


def render_type(tp: Any) -> str:
    """A short, readable name of a field type."""
    if tp is Seconds:
        return "duration"
    if tp is OptionalSeconds:
        return 'duration or "none"'
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return " or ".join(repr(a).replace("'", '"') for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(render_type(a) for a in typing.get_args(tp))
    if origin is typing.Annotated:
        return render_type(typing.get_args(tp)[0])
    if origin is not None:
        args = ", ".join("..." if a is Ellipsis else render_type(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def _readable(seconds: float) -> str:
    """`` (5m)`` for 300 seconds: the largest whole unit, when there is one above seconds."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f" ({seconds / size:g}{unit})"
    return ""


def render_default(value: Any) -> str:
    """A default as it would be written in YAML."""
    if value is None:
        return "null (unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, OptionalSeconds) and not value:
        return '"none"'
    if isinstance(value, Seconds | OptionalSeconds):
        return f"{float(value):g}s" + _readable(float(value))
    if isinstance(value, str):
        return f'"{value}"' if value else '"" (empty)'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(render_default(v) for v in value) + "]" if value else "[] (empty)"
    return repr(value)


def _unit(name: str, tp: Any) -> str:
    base = typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp
    args = (
        set(typing.get_args(base)) if typing.get_origin(base) in (types.UnionType, typing.Union) else {base}
    )
    if Seconds in args or OptionalSeconds in args or timedelta in args:
        return "seconds"
    if float in args and name.endswith(_EPOCH_SUFFIXES):
        return "epoch seconds"
    if int in args:
        return _INT_UNITS.get(name, "count")
    return "-"


def field_docs(cls: type[msgspec.Struct], exclude: type[msgspec.Struct] | None = None) -> list[FieldDoc]:
    """The documented fields of ``cls`` (without those of ``exclude``, a base), in order.

    A field without a description gets an empty one: the caller reports it.
    """
    skip = {f.name for f in msgspec.structs.fields(exclude)} if exclude is not None else set()
    described = _descriptions(cls)
    rows: list[FieldDoc] = []
    for info in msgspec.structs.fields(cls):
        if info.name in skip:
            continue
        if info.default is not msgspec.NODEFAULT:
            default = render_default(info.default)
        elif info.default_factory in (list, dict, tuple, set):
            default = render_default(info.default_factory())
        elif info.default_factory is not msgspec.NODEFAULT:
            default = f"{getattr(info.default_factory, '__name__', 'computed')}()"
        else:
            default = "required"
        rows.append(
            FieldDoc(
                name=info.encode_name,
                type=render_type(info.type),
                default=default,
                unit=_unit(info.name, info.type),
                description=described.get(info.name, ""),
            )
        )
    return rows

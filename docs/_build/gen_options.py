"""Configuration reference tables generated from the option Structs.

``options_table`` renders every field of a Struct (optionally without the fields
of one of its bases): name, type, default, unit and the description from its
docstring. ``dialect_defaults_table`` renders the tuned defaults each dialect type
(``keydb``, ``dragonfly``) puts in place of the Struct defaults.
"""

from __future__ import annotations

import importlib

import msgspec
from gen_fields import field_docs, render_default

import queuestore as qs
from queuestore._durations import Seconds
from queuestore.backends import BUILTIN_BACKENDS
from queuestore.backends._dialect import DialectFactory

__all__ = ["dialect_defaults_table", "load_struct", "options_table"]


def load_struct(path: str) -> type[msgspec.Struct]:
    """``"package.module:Name"`` -> the Struct class.

    Raises:
        ValueError: the path does not name a msgspec Struct.
    """
    module_name, _, name = path.partition(":")
    value = getattr(importlib.import_module(module_name), name, None)
    if not (isinstance(value, type) and issubclass(value, msgspec.Struct)):
        raise ValueError(f"{path!r} is not a msgspec Struct")
    return value


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def options_table(
    struct: type[msgspec.Struct], exclude: type[msgspec.Struct] | None = None, *, label: str = "option"
) -> tuple[str, list[str]]:
    """The Markdown table of ``struct``'s fields, and the names of the fields without a description."""
    rows = field_docs(struct, exclude)
    lines = [f"| {label} | type | default | unit | meaning |", "|---|---|---|---|---|"]
    missing: list[str] = []
    for row in rows:
        if not row.description:
            missing.append(row.name)
        cells = [
            f"`{row.name}`",
            _cell(row.type),
            f"`{_cell(row.default)}`",
            row.unit,
            _cell(row.description),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), missing


def dialect_defaults_table() -> str:
    """One column per dialect type: the default it uses for each option it tunes."""
    registry = qs.default_registry()
    dialects = {
        name: factory
        for name in sorted(BUILTIN_BACKENDS)
        if isinstance(factory := registry.factory(name), DialectFactory)
    }
    tuned = {name: f.option_defaults(qs.DefaultsConfig()) for name, f in dialects.items()}
    names = sorted({option for values in tuned.values() for option in values})
    stock = {f.name: f for f in msgspec.structs.fields(next(iter(dialects.values())).options_type)}
    lines = [
        "| option | " + " | ".join(f"`{d}`" for d in dialects) + " | `redis-lists`, `redis-streams` |",
        "|---|" + "---|" * (len(dialects) + 1),
    ]
    for option in names:
        cast = Seconds if stock[option].type is Seconds else (lambda value: value)
        cells = [f"`{render_default(cast(tuned[d].get(option, stock[option].default)))}`" for d in dialects]
        lines.append(
            f"| `{option}` | " + " | ".join(cells) + f" | `{render_default(stock[option].default)}` |"
        )
    return "\n".join(lines)

"""Output: rich tables for people, one JSON document for ``--json``, errors on stderr."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import msgspec
from rich.console import Console
from rich.table import Table

from queuestore._redact import redact

__all__ = ["Out", "plain"]

_ENCODER = msgspec.json.Encoder(order="deterministic")


def plain(value: Any) -> Any:
    """``value`` as JSON-ready builtins (Structs, enums and sets included)."""
    return msgspec.to_builtins(value, order="deterministic")


class Out:
    """Where a command writes: stdout for results, stderr for errors and progress notes.

    Args:
        json: write one JSON document per result instead of tables.
    """

    def __init__(self, *, json: bool = False) -> None:
        self.json = json
        self.console = Console(file=sys.stdout, soft_wrap=True, highlight=False, width=_width(sys.stdout))
        self.errors = Console(file=sys.stderr, soft_wrap=True, highlight=False, width=_width(sys.stderr))

    def data(self, value: Any) -> None:
        """Write ``value`` as one JSON document (``--json``) or as a pretty repr."""
        if self.json:
            sys.stdout.write(_ENCODER.encode(plain(value)).decode() + "\n")
            sys.stdout.flush()
        else:
            self.console.print(plain(value))

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Write a table (never in ``--json`` mode: call :meth:`data` there)."""
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(_cell(c) for c in row))
        self.console.print(table)

    def line(self, text: str) -> None:
        """Write a line of text to stdout (markup is not interpreted)."""
        self.console.print(text, markup=False)

    def note(self, text: str) -> None:
        """Write a line to stderr (progress, hints); passwords redacted."""
        self.errors.print(redact(text), markup=False)

    def error(self, text: str) -> None:
        """Write an error line to stderr; passwords redacted."""
        self.errors.print(f"error: {redact(text)}", markup=False, style="red")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value else "0"
    return str(value)


def _width(stream: Any) -> int | None:
    """The terminal's width, or 200 columns when not a terminal (so tables do not wrap in logs)."""
    isatty = getattr(stream, "isatty", None)
    return None if isatty is not None and isatty() else 200

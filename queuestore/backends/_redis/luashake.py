"""Only the library a script uses: the top-level definitions of a script library that one script
reaches, in their order.

Every script of a backend is built as prelude + preamble + library + its own source, and Redis
runs a script's top level on *every* call: each ``local function`` of the library makes a new
closure and each table constructor a new table, which the Lua GC then collects, whether the script
calls them or not. For the lists library that was about 76,000 of the server's instructions per
call of any script (``docs/benchmarks.md``, "A cheaper lone call"). :func:`used_library` keeps the
top-level definitions the script's source names, and the ones those name, transitively; the rest
is left out of that script's body. What is kept is byte for byte what was written, in the same
order, so a kept definition sees the same locals it saw before.

The library's top level is read as a list of *definitions*: each starts at a line that begins
(in column 0) with ``local``, and runs to the next such line; comment lines in column 0 go with the
definition after them. Every other top-level line (``end``, a closing ``}``, an indented body)
belongs to the definition it follows. A library whose top level holds anything else (a bare
statement in column 0) is refused, so a statement with an effect is never dropped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["LibraryShapeError", "used_library"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LOCAL_FUNCTION = re.compile(r"local\s+function\s+([A-Za-z_][A-Za-z0-9_]*)")
_LOCAL_NAMES = re.compile(r"local\s+([A-Za-z_][A-Za-z0-9_]*(?:\s*,\s*[A-Za-z_][A-Za-z0-9_]*)*)")
#: what a top-level line in column 0 may start with, besides ``local`` and comments
_CONTINUATIONS = ("end", "}", ")")
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|' + r"'(?:\\.|[^'\\])*'")
#: a line's code: string literals and other characters, up to a comment
_LINE_CODE = re.compile(r'(?:"(?:\\.|[^"\\])*"|' + r"'(?:\\.|[^'\\])*'|-(?!-)|[^-\"'])*")


class LibraryShapeError(ValueError):
    """The library's top level holds a statement that is not a ``local`` definition."""


@dataclass(frozen=True)
class _Definition:
    names: tuple[str, ...]
    text: str
    uses: frozenset[str]


def _code_names(text: str) -> frozenset[str]:
    """The identifiers ``text`` names outside comments and string literals (one line at a time:
    the libraries use no long strings or block comments)."""
    names: set[str] = set()
    for line in text.splitlines():
        code = _LINE_CODE.match(line)
        assert code is not None  # the pattern matches any line (at worst, its empty start)
        names.update(_NAME.findall(_STRING.sub('""', code.group(0))))
    return frozenset(names)


def _definitions(library: str) -> tuple[str, list[_Definition]]:
    """The lines before the first definition, and the definitions, in order.

    Raises:
        LibraryShapeError: a top-level line is neither a definition, a comment, nor the close of
            the definition before it.
    """
    head: list[str] = []
    parts: list[list[str]] = []
    pending: list[str] = []  # comment lines in column 0, given to the next definition
    for line in library.splitlines(keepends=True):
        if line.startswith("local"):
            parts.append([*pending, line])
            pending = []
        elif line.startswith("--") or not line.strip():
            pending.append(line)
        elif line[0] in " \t" or line.startswith(_CONTINUATIONS):
            if not parts:
                raise LibraryShapeError(f"library line outside any definition: {line.rstrip()!r}")
            parts[-1] += [*pending, line]
            pending = []
        else:
            raise LibraryShapeError(f"library statement is not a local definition: {line.rstrip()!r}")
    out: list[_Definition] = []
    for lines in parts:
        first = next(x for x in lines if x.startswith("local"))
        fn = _LOCAL_FUNCTION.match(first)
        if fn is not None:
            names: tuple[str, ...] = (fn.group(1),)
        else:
            m = _LOCAL_NAMES.match(first)
            assert m is not None
            names = tuple(n.strip() for n in m.group(1).split(","))
        text = "".join(lines)
        out.append(_Definition(names, text, _code_names(text) - set(names)))
    return "".join(head), out


def used_library(library: str, source: str) -> str:
    """The part of ``library`` that ``source`` reaches (see the module docstring).

    Raises:
        LibraryShapeError: the library's top level holds a statement that is not a ``local``
            definition (nothing could be dropped safely).
    """
    head, defs = _definitions(library)
    by_name: dict[str, list[int]] = {}
    for i, d in enumerate(defs):
        for n in d.names:
            by_name.setdefault(n, []).append(i)  # a name defined twice: both kept
    keep: set[int] = set()
    todo = [i for n in _code_names(source) for i in by_name.get(n, ())]
    while todo:
        i = todo.pop()
        if i not in keep:
            keep.add(i)
            todo += [j for n in defs[i].uses for j in by_name.get(n, ()) if j not in keep]
    return head + "".join(d.text for i, d in enumerate(defs) if i in keep)

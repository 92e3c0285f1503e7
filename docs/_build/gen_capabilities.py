"""The capability table of the built-in backend types, from the code.

``memory`` answers ``capabilities()`` itself: a real backend is opened (it needs no
server) and asked. The Redis types decide most flags in code and take two from the
probe at connect (``persistence``: AOF or RDB snapshots on; ``clustering``: a
cluster connection). Their ``capabilities()`` is called on a stand-in for the open
backend whose probe result is varied: a flag that does not change is the
backend's own; a flag that changes is marked as the server's. The dialect types
(``keydb``, ``dragonfly``) make a ``redis-lists`` or ``redis-streams`` backend, by
their ``layout`` option.
"""

from __future__ import annotations

import asyncio
import typing
from dataclasses import dataclass

import msgspec

import queuestore as qs
from queuestore.backends import BUILTIN_BACKENDS
from queuestore.backends._dialect import LAYOUTS, DialectFactory
from queuestore.backends._redis.base import RedisBackendBase
from queuestore.backends._redis.probe import ServerInfo
from queuestore.backends.redis_lists import RedisListsBackend
from queuestore.backends.redis_streams import RedisStreamsBackend, RedisStreamsOptions

__all__ = ["FLAGS", "SERVER", "capability_rows", "capability_table"]

FLAGS = tuple(f.name for f in msgspec.structs.fields(qs.BackendCapabilities))
SERVER = "server"


@dataclass
class _Connection:
    cluster: bool


class _ProbedStandIn:
    """What ``_base_capabilities`` reads of an open Redis backend: the probe and the connection."""

    _base_capabilities = RedisBackendBase._base_capabilities

    def __init__(self, persistence: bool, cluster: bool) -> None:
        self.server = ServerInfo(kind="redis", version="7.0.0", aof_enabled=persistence, rdb_enabled=False)
        self.conn = _Connection(cluster=cluster)


def _redis_flags(backend_class: type[RedisBackendBase]) -> dict[str, bool | str]:
    low = backend_class.capabilities(_ProbedStandIn(False, False))  # type: ignore[arg-type]
    high = backend_class.capabilities(_ProbedStandIn(True, True))  # type: ignore[arg-type]
    return {f: (getattr(low, f) if getattr(low, f) == getattr(high, f) else SERVER) for f in FLAGS}


async def _memory_flags() -> dict[str, bool | str]:
    config = qs.BackendConfig(type="memory", name="capabilities", queue="capabilities")
    async with await qs.default_registry().create("memory", config) as backend:
        caps = backend.capabilities()
    return {f: getattr(caps, f) for f in FLAGS}


def _created_class(factory: object) -> type[RedisBackendBase] | None:
    """The backend class a Redis factory's ``create`` returns (None: it depends on the config)."""
    hints = typing.get_type_hints(type(factory).create)  # type: ignore[attr-defined]
    created = hints.get("return")
    if (
        isinstance(created, type)
        and issubclass(created, RedisBackendBase)
        and created is not RedisBackendBase
    ):
        return created
    return None


def capability_rows() -> list[tuple[str, dict[str, bool | str]]]:
    """(column title, flag -> True / False / ``SERVER``) for each built-in type and dialect layout."""
    registry = qs.default_registry()
    rows: list[tuple[str, dict[str, bool | str]]] = []
    for name in sorted(
        BUILTIN_BACKENDS, key=lambda n: (n != "memory", isinstance(registry.factory(n), DialectFactory), n)
    ):
        factory = registry.factory(name)
        if name == "memory":
            rows.append((f"`{name}`", asyncio.run(_memory_flags())))
        elif isinstance(factory, DialectFactory):
            for layout in LAYOUTS:
                options = factory.layout_options(layout)
                made = RedisStreamsBackend if issubclass(options, RedisStreamsOptions) else RedisListsBackend
                rows.append((f"`{name}` ({layout})", _redis_flags(made)))
        else:
            made_by = _created_class(factory)
            if made_by is None:
                raise RuntimeError(f"cannot tell which backend class the {name!r} factory makes")
            rows.append((f"`{name}`", _redis_flags(made_by)))
    return rows


def _cell(value: bool | str) -> str:
    if value == SERVER:
        return "server"
    return "yes" if value else "-"


def capability_table() -> str:
    """The Markdown table: one row per flag, one column per built-in type (and dialect layout)."""
    rows = capability_rows()
    head = "| flag | " + " | ".join(name for name, _ in rows) + " |"
    rule = "|---|" + "---|" * len(rows)
    body = [f"| `{f}` | " + " | ".join(_cell(flags[f]) for _, flags in rows) + " |" for f in FLAGS]
    return "\n".join([head, rule, *body])

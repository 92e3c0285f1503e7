"""The tables the docs site generates from the code tell the truth.

The capability table is made without a server (docs/_build/gen_capabilities.py): memory is
asked, the Redis types' ``capabilities()`` runs with the probe result varied. Here every
type and layout is opened on real servers -- without persistence, with AOF, on a 3-primary
cluster -- and what it reports must be what the table says. The configuration reference
(docs/_build/gen_fields.py) must list every field of every option Struct, described.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

import queuestore as qs
from queuestore.backends import BUILTIN_BACKENDS
from tests.servers import RedisCluster, RedisServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_build"))

from gen_capabilities import FLAGS, SERVER, capability_rows
from gen_fields import field_docs

pytestmark = pytest.mark.anyio

#: what a flag marked SERVER is on each kind of server
PROBED = {"persistence": {"plain": False, "aof": True, "cluster": False}}
CLUSTERED = {"clustering": {"plain": False, "aof": False, "cluster": True}}


Rows = list[tuple[str, dict[str, bool | str]]]


@pytest.fixture(scope="module")
def rows() -> Rows:
    """The table's columns, made as the docs build makes them (outside any event loop)."""
    return capability_rows()


def _targets(rows: Rows) -> list[tuple[str, str | None]]:
    """(type, layout) per column of the table, in its order."""
    out: list[tuple[str, str | None]] = []
    for title, _ in rows:
        name = title.split("`")[1]
        layout = title.split("(")[1].rstrip(")") if "(" in title else None
        out.append((name, layout))
    return out


def _config(backend_type: str, layout: str | None, url: str) -> qs.BackendConfig:
    options: dict[str, Any] = {"key_prefix": f"docs-{uuid.uuid4().hex[:8]}:"}
    if layout is not None:
        options["layout"] = layout
    return qs.BackendConfig(type=backend_type, name="docs", queue="docs", url=url, options=options)


async def _reported(cfg: qs.BackendConfig) -> qs.BackendCapabilities:
    async with await qs.default_registry().create(cfg.type, cfg) as backend:
        return backend.capabilities()


def _expected(flags: dict[str, bool | str], kind: str) -> dict[str, bool]:
    expected: dict[str, bool] = {}
    for flag in FLAGS:
        value = flags[flag]
        if value == SERVER:
            known = {**PROBED, **CLUSTERED}
            assert flag in known, f"{flag} is marked as the server's: add what each server gives"
            expected[flag] = known[flag][kind]
        else:
            assert isinstance(value, bool)
            expected[flag] = value
    return expected


def test_the_table_has_a_column_per_builtin_type_and_layout(rows: Rows) -> None:
    targets = _targets(rows)
    assert {name for name, _ in targets} == set(BUILTIN_BACKENDS)
    assert ("keydb", "streams") in targets
    assert ("dragonfly", "lists") in targets


async def test_standalone_servers_report_what_the_table_says(
    rows: Rows, redis_server: RedisServer, aof_redis_server: RedisServer
) -> None:
    for (backend_type, layout), (title, flags) in zip(_targets(rows), rows, strict=True):
        if backend_type == "memory":
            reported = await _reported(qs.BackendConfig(type="memory", name=f"docs-{uuid.uuid4().hex}"))
            assert msgspec.structs.asdict(reported) == _expected(flags, "plain"), title
            continue
        for kind, server in (("plain", redis_server), ("aof", aof_redis_server)):
            reported = await _reported(_config(backend_type, layout, server.url))
            assert msgspec.structs.asdict(reported) == _expected(flags, kind), (title, kind)


async def test_a_cluster_reports_what_the_table_says(rows: Rows, redis_cluster: RedisCluster) -> None:
    for (backend_type, layout), (title, flags) in zip(_targets(rows), rows, strict=True):
        if backend_type == "memory":
            continue
        cfg = _config(backend_type, layout, redis_cluster.url)
        cfg.cluster_mode, cfg.cluster_addrs = True, list(redis_cluster.startup_nodes)
        reported = await _reported(cfg)
        assert msgspec.structs.asdict(reported) == _expected(flags, "cluster"), title


@pytest.mark.parametrize(
    "path",
    [
        "queuestore.backends.memory.options:MemoryOptions",
        "queuestore.backends.redis_lists.options:RedisListsOptions",
        "queuestore.backends.redis_streams.options:RedisStreamsOptions",
        "queuestore.backends.keydb:KeyDBListsOptions",
        "queuestore.backends.dragonfly:DragonflyStreamsOptions",
        "queuestore._models:DefaultsConfig",
        "queuestore._models:BackendConfig",
        "queuestore._job:Job",
        "queuestore._models:DequeueOptions",
        "queuestore._models:IterOptions",
    ],
)
def test_every_field_is_in_the_reference_with_a_description(path: str) -> None:
    module, _, name = path.partition(":")
    struct = getattr(__import__(module, fromlist=[name]), name)
    rows = field_docs(struct)
    assert [r.name for r in rows] == [f.encode_name for f in msgspec.structs.fields(struct)]
    assert [r.name for r in rows if not r.description] == []
    assert all(r.default for r in rows)


def test_durations_show_their_unit_and_default() -> None:
    rows = {r.name: r for r in field_docs(qs.DefaultsConfig)}
    assert (rows["idle_timeout"].default, rows["idle_timeout"].unit) == ("300s (5m)", "seconds")
    assert rows["pool_size"].unit == "count"

"""The backends and topologies the conformance suite runs against.

A target names a backend type (as registered in ``queuestore.backends.BUILTIN_BACKENDS``)
and a topology:

* ``memory``     -- no server; each test gets its own memory namespace.
* ``standalone`` -- the session's ``redis_server`` fixture (``.url``); each test gets
  its own ``key_prefix`` option.
* ``aof``        -- a session-scoped server with ``appendonly yes`` + ``appendfsync always``
  (the ``conformance_aof_server`` fixture); each test gets its own ``key_prefix``. Its
  targets set ``wait_for_fsync``, so every durable write takes the probed fsync path
  (WAITAOF where the server has it, nothing to send where it has not), a ``call_margin``
  of :data:`AOF_CALL_MARGIN` seconds and a ``read_timeout`` of :data:`AOF_READ_TIMEOUT`.
* ``cluster``    -- the session's ``redis_cluster`` fixture (``.url``, ``.startup_nodes``),
  ``cluster_mode=True``; each test gets its own ``key_prefix``. Marked ``cluster``.
* ``external``   -- a server the tests did not start (KeyDB, Dragonfly, Valkey...), at the
  URL in the environment variable ``Target.env``; each test gets its own ``key_prefix``
  and its keys (only those) are deleted after it. Skipped, naming the variable, when unset.

The dialect types (``keydb``, ``dragonfly``) also run on the local redis-server: their
factories (defaults, ``layout``) are exercised for real, and the dialect follows the
probed server (Redis here), not the type name.

To add a backend, append its targets below, e.g.::

    Target("redis-lists-standalone", "redis-lists", "standalone"),
    Target("redis-lists-cluster", "redis-lists", "cluster"),

``QUEUESTORE_CONFORMANCE_TARGETS`` (comma-separated target ids) restricts a run to
some targets, e.g. ``QUEUESTORE_CONFORMANCE_TARGETS=memory``;
``QUEUESTORE_CONFORMANCE_TOPOLOGIES`` (comma-separated topologies) to some topologies, e.g.
``QUEUESTORE_CONFORMANCE_TOPOLOGIES=standalone,aof,cluster`` (the runs on other servers).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import pytest

Topology = Literal["memory", "standalone", "aof", "cluster", "external"]

TARGETS_ENV = "QUEUESTORE_CONFORMANCE_TARGETS"
TOPOLOGIES_ENV = "QUEUESTORE_CONFORMANCE_TOPOLOGIES"
TOPOLOGIES: tuple[Topology, ...] = ("memory", "standalone", "aof", "cluster", "external")


@dataclass(frozen=True)
class Target:
    """One backend type on one topology.

    Attributes:
        id: the pytest id of the target.
        type: the backend type name.
        topology: where its store lives (see the module docstring).
        options: extra backend options every test of this target gets.
        env: for ``external``: the variable holding the server's URL.
    """

    id: str
    type: str
    topology: Topology
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    env: str = ""

    def param(self) -> Any:
        """This target as a ``pytest.param`` (cluster targets get the ``cluster`` marker)."""
        marks = [pytest.mark.cluster] if self.topology == "cluster" else []
        return pytest.param(self, id=self.id, marks=marks)

    def skip_reason(self) -> str | None:
        """Why this target cannot run here (an external server's variable is unset), or None."""
        if self.topology == "external" and not os.environ.get(self.env, "").strip():
            return f"{self.env} is not set (the URL of an external server to run the suite on)"
        return None


#: the aof targets' ``call_margin`` and ``read_timeout``: every write waits for an fsync, which a
#: loaded machine's disk can hold past the default margin's half second and past the default read
#: timeout's second (a connect's writes too: seen with four suites side by side on two cores); no
#: conformance test is about either
AOF_CALL_MARGIN = 5.0
AOF_READ_TIMEOUT = 5.0

TARGETS: tuple[Target, ...] = (
    Target("memory", "memory", "memory"),
    Target("redis-lists-standalone", "redis-lists", "standalone", MappingProxyType({"strict_keys": True})),
    Target("redis-lists-cluster", "redis-lists", "cluster", MappingProxyType({"strict_keys": True})),
    Target(
        "redis-lists-standalone-nocoalesce",
        "redis-lists",
        "standalone",
        MappingProxyType({"strict_keys": True, "coalesce": False}),
    ),
    Target(
        "redis-streams-standalone", "redis-streams", "standalone", MappingProxyType({"strict_keys": True})
    ),
    Target("redis-streams-cluster", "redis-streams", "cluster", MappingProxyType({"strict_keys": True})),
    Target(
        "redis-lists-aof",
        "redis-lists",
        "aof",
        MappingProxyType(
            {
                "strict_keys": True,
                "wait_for_fsync": True,
                "call_margin": AOF_CALL_MARGIN,
                "read_timeout": AOF_READ_TIMEOUT,
            }
        ),
    ),
    Target(
        "redis-streams-aof",
        "redis-streams",
        "aof",
        MappingProxyType(
            {
                "strict_keys": True,
                "wait_for_fsync": True,
                "call_margin": AOF_CALL_MARGIN,
                "read_timeout": AOF_READ_TIMEOUT,
            }
        ),
    ),
    # dialect types on the local redis-server (defaults and layout exercised for real)
    Target("keydb-lists-standalone", "keydb", "standalone", MappingProxyType({"strict_keys": True})),
    Target(
        "dragonfly-streams-standalone",
        "dragonfly",
        "standalone",
        MappingProxyType({"strict_keys": True, "layout": "streams"}),
    ),
    # external servers (QUEUESTORE_TEST_<SERVER>_URL), both layouts each
    *(
        Target(
            f"{server}-{layout}-external",
            type_ if server != "valkey" else f"redis-{layout}",
            "external",
            MappingProxyType({"strict_keys": True, **({"layout": layout} if server != "valkey" else {})}),
            env=f"QUEUESTORE_TEST_{server.upper()}_URL",
        )
        for server, type_ in (("keydb", "keydb"), ("dragonfly", "dragonfly"), ("valkey", ""))
        for layout in ("lists", "streams")
    ),
)


def _listed(env: str) -> list[str]:
    return [t.strip() for t in os.environ.get(env, "").split(",") if t.strip()]


def selected_targets() -> list[Target]:
    """The targets of this run: all, or those named in ``QUEUESTORE_CONFORMANCE_TARGETS``,
    of the topologies named in ``QUEUESTORE_CONFORMANCE_TOPOLOGIES`` (all when unset).

    Raises:
        pytest.UsageError: a variable names an unknown target or topology.
    """
    chosen = list(TARGETS)
    wanted = _listed(TARGETS_ENV)
    if wanted:
        known = {t.id: t for t in TARGETS}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise pytest.UsageError(f"{TARGETS_ENV}: unknown target(s) {unknown}; known: {sorted(known)}")
        chosen = [known[w] for w in wanted]
    topologies = _listed(TOPOLOGIES_ENV)
    if topologies:
        unknown = [t for t in topologies if t not in TOPOLOGIES]
        if unknown:
            raise pytest.UsageError(
                f"{TOPOLOGIES_ENV}: unknown topology(ies) {unknown}; known: {list(TOPOLOGIES)}"
            )
        chosen = [t for t in chosen if t.topology in topologies]
    return chosen

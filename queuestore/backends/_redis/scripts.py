"""Lua scripts: loaded from package data, given the right header for the
server kind, loaded at startup, and run so that NOSCRIPT is always survived.

Each backend keeps its scripts in a ``lua/`` folder of its own package. A script
file ``<name>.lua`` there may start with a line
``--! flags=<flag,...>`` naming Redis 7 script flags. The loader then builds:

* Redis / Valkey 7+: ``#!lua`` (with ``flags=`` when given) -- shebang scripts
  are refused *before* running under OOM, so a script never fails half-way;
* KeyDB: no header (``#!lua`` is a compile error there);
* Dragonfly: ``--!df`` flags are only for Dragonfly's own flags; none are needed,
  so no header.

Then the prelude (``rcall = redis.call``) or, in strict-keys mode, a checker
that fails on any key argument not in KEYS, then the backend's optional
*preamble* (Lua generated from Python declarations, e.g. the key-block indexes,
so the order of KEYS is declared once), then the group's optional shared
library ``_lib.lua`` of that folder and its other ``_*.lua`` parts (helpers every script
of the group uses; there is no ``require`` in server Lua) -- of which each script gets only the
top-level definitions it reaches (:mod:`.luashake`: Redis runs a script's whole top level on
every call). Scripts call redis only through ``rcall``; a
test guards that.

NOSCRIPT (restart, failover, SCRIPT FLUSH, a cluster node that never saw the
script) is handled by re-sending the body with EVAL, which also caches it on
that node; in a pipeline only the NOSCRIPT entries are re-sent (a NOSCRIPT
entry did not run, so this never runs a script twice).
"""

from __future__ import annotations

import enum
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from redis.exceptions import NoScriptError

from queuestore.backends._redis.connection import RedisClient
from queuestore.backends._redis.lane import Lane
from queuestore.backends._redis.luashake import LibraryShapeError, used_library

__all__ = [
    "MAX_JOBS_PER_SCRIPT",
    "Script",
    "ScriptCall",
    "ScriptHeader",
    "ScriptSet",
    "load_script_source",
    "lua_folder",
]

#: the most jobs one script call takes, leases or acks: a batch call asking for more sends
#: several script calls, so that no one call holds the server for long (a script runs alone;
#: a take of 100,000 jobs in one script held a Redis 7.0 server for over a second)
MAX_JOBS_PER_SCRIPT = 1000

_LUA_PACKAGE = "queuestore.backends._redis"
Key = str | bytes
Arg = str | bytes | int | float


class ScriptHeader(enum.StrEnum):
    """Which script header the connected server understands."""

    REDIS7 = "redis7"
    NONE = "none"
    DRAGONFLY = "dragonfly"


def load_script_source(path: str) -> str:
    """Read ``lua/<path>`` of the shared plumbing (the preludes, the self-test script)."""
    return resources.files(_LUA_PACKAGE).joinpath("lua", path).read_text(encoding="utf-8")


def lua_folder(package: str) -> Traversable:
    """The ``lua/`` folder of a backend package (``__package__`` of its modules)."""
    return resources.files(package).joinpath("lua")


@dataclass(frozen=True)
class Script:
    """One script as sent to a server: final body and its SHA1."""

    name: str
    body: str
    sha: str
    flags: tuple[str, ...]


@dataclass(frozen=True)
class ScriptCall:
    """One script invocation, for :meth:`ScriptSet.run_many`."""

    name: str
    keys: Sequence[Key]
    args: Sequence[Arg]


def _folder_library(folder: Traversable) -> str:
    """The folder's optional ``_lib.lua``, then its other ``_*.lua`` files in name order (each a
    part of the library built on ``_lib.lua``); empty when it has none."""
    lib = folder.joinpath("_lib.lua")
    parts = [lib] if lib.is_file() else []
    more = [f for f in folder.iterdir() if f.name.startswith("_") and f.name.endswith(".lua")]
    parts += sorted((f for f in more if f.name != "_lib.lua"), key=lambda f: f.name)
    return "".join(f.read_text(encoding="utf-8") for f in parts)


def _build(name: str, source: str, header: ScriptHeader, strict: bool, library: str = "") -> Script:
    """One script: header, prelude, then ``library`` (preamble and ``_lib.lua``), then its source."""
    flags: tuple[str, ...] = ()
    lines = source.splitlines()
    if lines and lines[0].startswith("--! flags="):
        flags = tuple(f for f in lines[0][len("--! flags=") :].strip().split(",") if f)
        source = "\n".join(lines[1:]) + "\n"
    prelude = load_script_source("_prelude_strict.lua" if strict else "_prelude.lua")
    if header is ScriptHeader.REDIS7:
        head = "#!lua" + (f" flags={','.join(flags)}" if flags else "") + "\n"
    else:
        head = ""
    try:
        used = used_library(library, source)
    except LibraryShapeError:  # a library with top-level statements is sent whole
        used = library
    body = head + prelude + used + source
    return Script(name, body, hashlib.sha1(body.encode()).hexdigest(), flags)


class ScriptSet:
    """The scripts of one backend, built for one server kind.

    Args:
        folder: the backend's ``lua/`` folder (:func:`lua_folder`).
        names: script names in that folder (without ``.lua``).
        header: the server's header kind (from the probe).
        strict_keys: use the strict-keys checker prelude (tests).
        preamble: Lua put after the prelude and before the folder's ``_lib.lua``
            (constants generated from the backend's Python declarations).
    """

    def __init__(
        self,
        folder: Traversable,
        names: Sequence[str],
        header: ScriptHeader,
        *,
        strict_keys: bool = False,
        preamble: str = "",
    ) -> None:
        self.header = header
        self.strict_keys = strict_keys
        library = preamble + _folder_library(folder)
        self.scripts: dict[str, Script] = {
            n: _build(
                n, folder.joinpath(f"{n}.lua").read_text(encoding="utf-8"), header, strict_keys, library
            )
            for n in names
        }
        #: NOSCRIPT recoveries so far (observability and tests)
        self.reloads = 0
        #: invocations per script name (the strict-keys test checks every script ran)
        self.calls: Counter[str] = Counter()

    async def load(self, client: RedisClient) -> None:
        """SCRIPT LOAD every script (on a cluster: on every primary).

        Raises:
            redis.exceptions.RedisError: the caller translates it.
        """
        for script in self.scripts.values():
            await client.script_load(script.body)  # redis-py's cluster client sends it to every primary

    async def run(self, client: RedisClient, name: str, keys: Sequence[Key], args: Sequence[Arg]) -> Any:
        """EVALSHA a script; on NOSCRIPT, EVAL its body (which caches it) once.

        Raises:
            redis.exceptions.RedisError: the caller translates it.
        """
        script = self.scripts[name]
        self.calls[name] += 1
        try:
            return await client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            self.reloads += 1
            return await client.eval(script.body, len(keys), *keys, *args)

    async def run_lane(self, lane: Lane, name: str, keys: Sequence[Key], args: Sequence[Arg]) -> Any:
        """:meth:`run` on the lone-call lane of the client (see :mod:`.lane`).

        Raises:
            redis.exceptions.RedisError: the caller translates it.
        """
        script = self.scripts[name]
        self.calls[name] += 1
        try:
            return await lane.call(("EVALSHA", script.sha, len(keys), *keys, *args))
        except NoScriptError:
            self.reloads += 1
            return await lane.call(("EVAL", script.body, len(keys), *keys, *args))

    async def run_many(self, client: RedisClient, calls: Sequence[ScriptCall]) -> list[Any]:
        """Run several scripts in one pipelined round trip (no MULTI).

        Returns one result per call; an entry that failed with an error other
        than NOSCRIPT is returned as the exception instance (not raised).

        Raises:
            redis.exceptions.RedisError: the connection failed.
        """
        if not calls:
            return []
        self.calls.update(c.name for c in calls)
        results = await self._pipeline(client, calls, use_body=False)
        retry = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if retry:
            self.reloads += 1
            again = await self._pipeline(client, [calls[i] for i in retry], use_body=True)
            for i, r in zip(retry, again, strict=True):
                results[i] = r
        return results

    async def _pipeline(
        self, client: RedisClient, calls: Sequence[ScriptCall], *, use_body: bool
    ) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for c in calls:
            s = self.scripts[c.name]
            # execute_command, not pipe.evalsha: redis-py's cluster pipeline blocks the
            # evalsha method but routes the raw command by its keys like any other
            if use_body:
                pipe.execute_command("EVAL", s.body, len(c.keys), *c.keys, *c.args)
            else:
                pipe.execute_command("EVALSHA", s.sha, len(c.keys), *c.keys, *c.args)
        return list(await pipe.execute(raise_on_error=False))

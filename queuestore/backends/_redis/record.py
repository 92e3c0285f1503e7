"""The migration record on a Redis-family store: one hash per queue under its hash tag.

``<prefix>{<queue>}:migration`` holds the record described in :mod:`queuestore._record`;
``lua/record.lua`` (of this package) applies one operation atomically. The script is
shared by both layouts and built, like theirs, for the connected server kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from queuestore._record import RECORD_OPS, RecordOp, RecordReply
from queuestore.backends._redis.errors import REDIS_FAILURES, translate
from queuestore.backends._redis.scripts import ScriptSet, lua_folder
from queuestore.errors import InvalidJobError

if TYPE_CHECKING:
    from queuestore.backends._redis.base import RedisBackendBase

__all__ = ["RECORD_SUFFIX", "run_record"]

#: the key suffix of the record (``<prefix>{<queue>}:migration``)
RECORD_SUFFIX = "migration"
_FOLDER = lua_folder("queuestore.backends._redis")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _scripts(backend: RedisBackendBase) -> ScriptSet:
    """The record script built for ``backend``'s server kind (once per backend)."""
    cached: ScriptSet | None = getattr(backend, "_record_scripts", None)
    if cached is None:
        cached = ScriptSet(
            _FOLDER, ("record",), backend.server.script_header, strict_keys=backend.options.strict_keys
        )
        backend._record_scripts = cached  # type: ignore[attr-defined]
    return cached


async def run_record(
    backend: RedisBackendBase,
    op: RecordOp,
    *,
    owner: str = "",
    lease: float = 0.0,
    retention: float = 0.0,
    fields: Mapping[str, str] | None = None,
) -> RecordReply:
    """Apply one record operation to ``backend``'s queue (one script, one round trip).

    Raises:
        InvalidJobError: an unknown ``op`` (field ``op``).
        BackendError: the store failed.
    """
    if op not in RECORD_OPS:
        raise InvalidJobError("op", f"must be one of {', '.join(RECORD_OPS)}, got {op!r}")
    args: list[str | float] = [op, owner, float(lease), float(retention)]
    for name, value in (fields or {}).items():
        args += [name, value]
    key = backend.keys.key(RECORD_SUFFIX)
    scripts = _scripts(backend)
    try:
        reply = await scripts.run(backend.conn.client, "record", [key], args)
    except REDIS_FAILURES as exc:
        raise translate(backend.name, f"migration_record:{op}", exc) from exc
    flat = [_text(v) for v in reply[2]]
    return RecordReply(
        bool(int(reply[0])), float(_text(reply[1])), dict(zip(flat[::2], flat[1::2], strict=True))
    )

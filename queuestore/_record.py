"""The migration record of a queue: one small hash per queue in the source's own store.

The record says which migration of the queue is running or ran (``mid``), who runs it
(``owner``, with a lease ``deadline`` on the store's clock), where it is (``phase``,
``status``: the status as JSON, with the counters), where the queue goes (``target``: a
descriptor without secrets) and, once writes must go there, the queue's new home
(``home``): from then on every storing script of the source answers "moved" instead of
storing (see ``queuestore.migration._record``).

Four operations, each one atomic step on the store (one Lua script on Redis, one
uninterrupted function in the memory backend, which is the reference below):

* ``read``: the fields and the store's time.
* ``claim``: take the owner lease: granted when nobody holds it, or the holder's lease
  has run out (a take-over), or the caller holds it already; then write the fields.
* ``update``: only for the holder: write the fields and renew the lease.
* ``release``: only for the holder: write the fields, give the lease up and let the
  record expire after ``retention`` seconds (0 = keep it).

Every reply is ``(granted, store time, fields after the call)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, NamedTuple

__all__ = ["RECORD_OPS", "RecordOp", "RecordReply", "apply_record_op"]

RecordOp = Literal["read", "claim", "update", "release"]
RECORD_OPS: tuple[RecordOp, ...] = ("read", "claim", "update", "release")


class RecordReply(NamedTuple):
    """What a record operation answered.

    Attributes:
        granted: the operation was done (``read`` always is).
        now: the store's clock when it ran (epoch seconds).
        fields: the record after the operation (empty when there is none).
    """

    granted: bool
    now: float
    fields: dict[str, str]


def apply_record_op(
    record: dict[str, str],
    op: RecordOp,
    *,
    owner: str,
    lease: float,
    fields: Mapping[str, str],
    now: float,
) -> RecordReply:
    """Apply ``op`` to ``record`` in place (the reference semantics of the Lua script).

    Retention is the caller's business (it expires the whole record). Fields given an
    empty value are removed.
    """
    if op != "read":
        holder = record.get("owner", "")
        alive = float(record.get("deadline", "0") or 0) > now
        claimable = not holder or holder == owner or not alive
        ok = claimable if op == "claim" else holder == owner and bool(owner)
        if not ok:
            return RecordReply(False, now, dict(record))
        for name, value in fields.items():
            if value:
                record[name] = value
            else:
                record.pop(name, None)
        if op == "release":
            record.pop("owner", None)
            record.pop("deadline", None)
        else:
            record["owner"] = owner
            record["deadline"] = repr(now + lease)
    return RecordReply(True, now, dict(record))

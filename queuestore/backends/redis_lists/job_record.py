"""A redis-lists job record, and a plain producer's entry adopted as a job.

A job record (one ``meta`` field) is a fixed-position header the hot path rewrites with
string operations, then the cold fields as msgpack, which only the cold transitions
(nack, reclaim, move, migration) decode::

    <state>|<attempt>|<lease token>|<started_at>|<lease deadline>|<msgpack Meta>

A plain producer pushes a JSON object (``{"payload": ...}``) onto a ready list; the lease
script stores it as a body marked :data:`PLAIN_MARKER`, read back by :func:`decode_plain`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from queuestore._job import Job
from queuestore.errors import SerializationError

__all__ = ["META_DEC", "PLAIN_MARKER", "Meta", "Record", "decode_plain", "parse_record", "record_for"]

#: a body adopted from a plain producer: marker, ``<created_at>\n``, then the JSON entry as pushed
PLAIN_MARKER = b"\x00qsp1"


class Meta(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The cold part of a job record (msgpack; short names: it is stored per job).
    ``max_retries`` is always written; the others only when they differ from their default
    (the scripts read a missing priority or retry count as 0). The scripts add ``ds`` to a
    delayed job's record (its store order, for ties of one due time); it is not a field here,
    so that a Meta keeps at most 15 fields and encodes with a one-byte map header."""

    mr: int  # max_retries
    p: int = 0  # priority
    rc: int = 0  # retry_count
    q: int | None = None  # sequence number (dead order)
    av: float | None = None  # available_at
    x: float | None = None  # expires_at
    le: str | None = None  # last_error
    dr: str | None = None  # dead_reason
    da: float | None = None  # dead_at
    o: str | None = None  # origin_queue
    hf: str | None = None  # state before held / moving
    mt: str | None = None  # move target
    mk: str | None = None  # move token (the target's receipt is keyed by it)
    ep: int | None = None  # moving out of ready: its list entry may still be in the list
    rd: int | None = None  # moving as a redrive: arrives with retry_count 0


class Record(msgspec.Struct, kw_only=True):
    """A whole job record: the hot header and the cold :class:`Meta`."""

    st: str
    a: int
    t: str | None
    sa: float | None
    dl: float | None
    meta: Meta


META_ENC = msgspec.msgpack.Encoder()
META_DEC = msgspec.msgpack.Decoder(Meta)
_VALID_CODES = frozenset("rdixhm")


class _PlainEntry(msgspec.Struct):
    """What a plain producer pushes (JSON; other keys are ignored)."""

    payload: Any
    type: str = ""


_PLAIN_DEC = msgspec.json.Decoder(_PlainEntry)


def _num(value: float | None) -> bytes:
    return b"" if value is None else repr(float(value)).encode()


def record_for(job: Job, state: str = "r") -> bytes:
    """The initial record of a job being stored (header + cold msgpack)."""
    meta = Meta(
        p=job.priority,
        mr=job.max_retries,
        rc=job.retry_count,
        av=job.available_at,
        x=job.expires_at,
        le=job.last_error,
        dr=job.dead_reason,
        da=job.dead_at,
        o=job.origin_queue,
    )
    header = b"%s|%d||%s||" % (state.encode(), job.attempt, _num(job.started_at))
    return header + META_ENC.encode(meta)


def parse_record(raw: bytes) -> Record | None:
    """A stored record, or None when it is missing or not one of ours."""
    if not raw:
        return None
    parts = bytes(raw).split(b"|", 5)
    if len(parts) != 6 or len(parts[0]) != 1 or parts[0].decode("latin-1") not in _VALID_CODES:
        return None
    try:
        meta = META_DEC.decode(parts[5])
        return Record(
            st=parts[0].decode(),
            a=int(parts[1] or 0),
            t=parts[2].decode() or None,
            sa=float(parts[3]) if parts[3] else None,
            dl=float(parts[4]) if parts[4] else None,
            meta=meta,
        )
    except (msgspec.DecodeError, ValueError):
        return None


def decode_plain(job_id: str, body: bytes) -> Job:
    """A job adopted from a plain producer's JSON entry (see :data:`PLAIN_MARKER`).

    Raises:
        SerializationError: the stored entry is not a JSON object with a payload.
    """
    head, _, entry = body[len(PLAIN_MARKER) :].partition(b"\n")
    try:
        plain = _PLAIN_DEC.decode(entry)
        created = float(head)
    except (msgspec.DecodeError, ValueError) as exc:
        raise SerializationError(f"undecodable plain entry ({exc}); first bytes {entry[:40]!r}") from exc
    return Job(id=job_id, type=plain.type, payload=plain.payload, created_at=created)

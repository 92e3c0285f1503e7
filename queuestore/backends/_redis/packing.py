"""A cheaper RESP packing of the commands the backends send, byte for byte what redis-py sends.

redis-py's ``pack_command`` runs its encoder and a growing ``bytes.join`` per argument: for a
script call carrying a queue's key block (two dozen keys) it was the largest part of the
client's instructions per lone call. :class:`PackingMixin` packs the common case (a command
name without spaces; ``str``, ``bytes``, ``int`` and ``float`` arguments; no value over the
buffer cutoff) as one buffer, each short ``str`` argument packed once per process and reused
(the key names repeat on every call; at most 4,096 of up to 128 bytes are kept); past the
first 48 arguments of a command (a batch's ids, which never repeat) short ASCII strings are
packed together as one string, others one by one, keeping only those of up to 8 bytes; anything
else goes to redis-py's own packing.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aredis

__all__ = ["PackedConnection", "PackedUnixConnection", "PackingMixin", "pack_fast"]

#: the packed form of recent short ``str`` arguments (cleared when full: call ids never repeat)
_PACKED: dict[str, bytes] = {}
_PACKED_MAX = 4096
#: only ``str`` arguments up to this many bytes are kept (key names, ids; not payloads)
_KEEP = 128
#: past the first this many arguments (a script call's name, digest and keys), only ``str``
#: arguments of up to ``_KEEP_TAIL`` bytes are kept: a batch's per-job ids, entry ids and
#: tokens never repeat, and keeping them would cost a dict insert each and evict the keys; its
#: empty and short fields do repeat
_HEAD = 48
_KEEP_TAIL = 8
#: values longer than this go to redis-py's packing, which sends them as separate chunks
_CUTOFF = 6000
#: the RESP head of a bulk string of each length up to 127 characters (see :func:`_pack_ascii`)
_BULK_HEAD = [f"${n}\r\n" for n in range(128)]


def pack_fast(args: tuple[Any, ...]) -> bytes | None:
    """The RESP array of ``args`` (UTF-8 strings), or None when redis-py must pack it (a
    command name with spaces, another argument type, a value over the cutoff)."""
    first = args[0]
    if type(first) is not str or " " in first:
        return None
    parts = [b"*%d\r\n" % len(args)]
    if not _pack_into(parts, args[:_HEAD], _KEEP):
        return None
    if len(args) > _HEAD:
        tail = args[_HEAD:]
        packed = _pack_ascii(tail)
        if packed is not None:
            parts.append(packed)
        elif not _pack_into(parts, tail, _KEEP_TAIL):
            return None
    return b"".join(parts)


def _pack_ascii(args: tuple[Any, ...]) -> bytes | None:
    """The packed ``args`` when every one is a short ASCII ``str`` (a batch's ids: their length
    in characters is their length in bytes), built as one string; None otherwise."""
    if set(map(type, args)) != {str}:
        return None
    try:
        heads = list(map(_BULK_HEAD.__getitem__, map(len, args)))
    except IndexError:  # one is longer than the table
        return None
    parts = ["\r\n"] * (3 * len(args))
    parts[0::3] = heads
    parts[1::3] = args
    text = "".join(parts)
    if not text.isascii():
        return None
    return text.encode()


def _pack_into(parts: list[bytes], args: tuple[Any, ...], keep: int) -> bool:
    """Append the packed ``args`` to ``parts``, keeping the packed form of ``str`` ones of up to
    ``keep`` bytes; False when one must go to redis-py."""
    cache = _PACKED
    append = parts.append
    for a in args:
        t = type(a)
        if t is str:
            p = cache.get(a) if len(a) <= keep else None  # a longer one is never kept
            if p is None:
                b = a.encode()
                if len(b) > _CUTOFF:
                    return False
                p = b"$%d\r\n%b\r\n" % (len(b), b)
                if len(b) <= keep:
                    if len(cache) >= _PACKED_MAX:
                        cache.clear()
                    cache[a] = p
            append(p)
        elif t is bytes:
            if len(a) > _CUTOFF:
                return False
            append(b"$%d\r\n%b\r\n" % (len(a), a))
        elif t is int or t is float:
            b = repr(a).encode()
            append(b"$%d\r\n%b\r\n" % (len(b), b))
        else:  # bool (refused by redis-py), bytearray, memoryview, subclasses
            return False
    return True


class PackingMixin:
    """Put before a redis-py asyncio connection class: its ``pack_command`` packs with
    :func:`pack_fast` when it can (UTF-8 strict encoding, as the backends configure)."""

    def pack_command(self, *args: Any) -> list[Any]:
        """The command's RESP bytes (redis-py's own packing when :func:`pack_fast` declines).

        Raises:
            redis.exceptions.DataError: an argument redis-py cannot encode.
        """
        packed = pack_fast(args)
        if packed is None:
            return super().pack_command(*args)  # type: ignore[misc,no-any-return]
        return [packed]


class PackedConnection(PackingMixin, aredis.Connection):
    """redis-py's TCP connection with :class:`PackingMixin`."""


class PackedUnixConnection(PackingMixin, aredis.UnixDomainSocketConnection):
    """redis-py's Unix-socket connection with :class:`PackingMixin`."""

"""A cheaper RESP packing of the commands the backends send, byte for byte what redis-py sends.

redis-py's ``pack_command`` runs its encoder and a growing ``bytes.join`` per argument: for a
script call carrying a queue's key block it was the largest part of the client's instructions
per lone call. :func:`pack_fast` packs the common case (a command name without spaces; ``str``,
``bytes``, ``memoryview``, ``int`` and ``float`` arguments) with hiredis's packer (C, one
buffer per command); anything else (a spaced command name such as ``CONFIG GET``, a ``bool``,
``None`` or ``bytearray`` argument) goes to redis-py's own packing, which sends it, or refuses
it, as it always did. Without hiredis (it is a dependency; a stripped install may lack it, or
have a release without a packer) every command goes to redis-py's packing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis.asyncio as aredis

from queuestore.backends._redis.torn import TornConnectionMixin

__all__ = ["PackedConnection", "PackedUnixConnection", "PackingMixin", "pack_fast"]


def _hiredis_packer() -> Callable[[tuple[Any, ...]], bytes] | None:
    try:
        import hiredis
    except ImportError:  # pragma: no cover - a declared dependency
        return None
    return getattr(hiredis, "pack_command", None)


_PACK = _hiredis_packer()


def pack_fast(args: tuple[Any, ...]) -> bytes | None:
    """The RESP array of ``args`` (UTF-8 strings), or None when redis-py must pack it (a
    command name with spaces, an argument of another type, no hiredis packer).

    Raises:
        UnicodeEncodeError: a ``str`` argument UTF-8 cannot carry (a lone surrogate), as
            redis-py's strict encoding raises it.
    """
    first = args[0]
    if _PACK is None or type(first) is not str or " " in first:
        return None
    try:
        return _PACK(args)
    except TypeError:  # bool, None, bytearray, ...: redis-py packs or refuses them
        return None


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


class PackedConnection(TornConnectionMixin, PackingMixin, aredis.Connection):
    """redis-py's TCP connection with :class:`PackingMixin` (and
    :class:`~.torn.TornConnectionMixin`)."""


class PackedUnixConnection(TornConnectionMixin, PackingMixin, aredis.UnixDomainSocketConnection):
    """redis-py's Unix-socket connection with :class:`PackingMixin` (and
    :class:`~.torn.TornConnectionMixin`)."""

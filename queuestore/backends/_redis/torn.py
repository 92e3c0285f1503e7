"""A connection closed under a call surfaces as redis-py's ``ConnectionError``, not as the
transport's internals.

When a connection is closed while a command is being written to it (the peer reset it, or
redis-py's cluster client disconnected a node's connections while another task was using
one), redis-py's asyncio connection lets the transport's internals escape: an
``AttributeError`` (``'NoneType' object has no attribute 'writelines'``: the stream writer is
already gone) or, as redis-py's tracker reports for Python 3.12 and later, a ``TypeError``
(``'NoneType' object is not callable``: the transport's write callback is). Neither is a
``RedisError``, so no retry with the call's id and no translation into queuestore's errors
would see it: the caller got a bare ``AttributeError`` for an enqueue that may or may not have
reached the server. :class:`TornConnectionMixin` turns exactly those,
raised from inside redis-py's connection or asyncio's transport, into
``redis.exceptions.ConnectionError`` (the original as its cause), which the backends treat as a
lost reply: retried with the same call id, or an ``OutcomeUnknownError``. Any other
``AttributeError`` or ``TypeError`` is raised as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import redis.asyncio.connection as _rconn
from redis.exceptions import ConnectionError as RedisConnectionError

__all__ = ["TornConnectionMixin", "raise_if_torn", "torn_connection"]

#: where such an error is raised: asyncio's transports and streams, redis-py's connection
_TORN_SOURCES = (str(Path(asyncio.__file__).parent), str(Path(_rconn.__file__)))


def torn_connection(exc: BaseException) -> bool:
    """Whether ``exc`` is the transport's internals escaping a connection closed under a call:
    an ``AttributeError`` or ``TypeError`` about ``None``, raised in asyncio's transport code
    or in redis-py's connection module."""
    if not isinstance(exc, AttributeError | TypeError) or "NoneType" not in str(exc):
        return False
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename.startswith(_TORN_SOURCES)


def raise_if_torn(exc: BaseException, doing: str) -> None:
    """Raise redis-py's ``ConnectionError`` (``exc`` its cause) when ``exc`` is a connection
    closed under a call (:func:`torn_connection`); else return, for the caller to re-raise
    ``exc`` as it is.

    Raises:
        redis.exceptions.ConnectionError: ``exc`` is a connection closed while ``doing``.
    """
    if torn_connection(exc):
        raise RedisConnectionError(f"the connection was closed while {doing} ({exc})") from exc


class TornConnectionMixin:
    """Put before a redis-py asyncio connection class: a connection closed under a write
    raises ``redis.exceptions.ConnectionError`` (see the module docstring)."""

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        """Send a packed command (redis-py's).

        Raises:
            redis.exceptions.ConnectionError: the connection broke, or was closed under the
                write (the transport's own error is the cause).
            redis.exceptions.TimeoutError: the write timed out.
        """
        try:
            await super().send_packed_command(command, check_health)  # type: ignore[misc]
        except (AttributeError, TypeError) as exc:
            raise_if_torn(exc, "a command was written to it")
            raise

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        """Read a reply (redis-py's).

        Raises:
            redis.exceptions.ConnectionError: the connection broke, or was closed under the
                read (the transport's own error is the cause).
            redis.exceptions.TimeoutError: the read timed out.
            redis.exceptions.ResponseError: the server answered with an error.
        """
        try:
            return await super().read_response(*args, **kwargs)  # type: ignore[misc]
        except (AttributeError, TypeError) as exc:
            raise_if_torn(exc, "a reply was read from it")
            raise

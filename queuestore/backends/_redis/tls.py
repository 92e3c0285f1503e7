"""TLS connections whose failures say what is likely wrong (a plain-text port, an untrusted
certificate), on every redis-py release the project supports."""

from __future__ import annotations

import ssl

import redis.asyncio as aredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from queuestore.backends._redis.packing import PackingMixin
from queuestore.backends._redis.torn import TornConnectionMixin

__all__ = ["TLSConnection"]


class TLSConnection(TornConnectionMixin, PackingMixin, aredis.SSLConnection):
    """redis-py's TLS connection, whose connect failure says when the port may be plain-text.

    A TLS client on a plain-text port sends its handshake and the server waits for a
    command line that never comes: the connect times out (after ``conn_timeout``, not
    retried) and the error says to check the scheme.
    """

    async def connect(self) -> None:
        """Connect and run the TLS handshake.

        Raises:
            redis.exceptions.ConnectionError: no TLS answer within ``conn_timeout`` or a
                broken handshake, with a hint about plain-text servers.
        """
        try:
            await super().connect()  # type: ignore[no-untyped-call]
        except (RedisTimeoutError, RedisConnectionError) as exc:
            text = _tls_failure(exc)
            if text is None:
                raise
            if "CERTIFICATE_REQUIRED" in text.upper() or "CERTIFICATE REQUIRED" in text.upper():
                hint = (
                    "the server requires a client certificate: set tls_cert_file and tls_key_file "
                    "to a certificate its CA signs"
                )
            elif "CERTIFICATE" in text.upper():
                hint = (
                    "the server's certificate was not accepted: set tls_ca_file to the CA that signs it, "
                    "or tls_check_hostname: false / tls_verify: false if you must"
                )
            else:
                hint = (
                    "the server may not speak TLS on this port: use redis:// for a plain-text server, "
                    "rediss:// only for a TLS one"
                )
            raise RedisConnectionError(
                f"TLS connection to {self.host}:{self.port} failed ({text}); {hint}"
            ) from exc


def _tls_failure(exc: BaseException) -> str | None:
    """The text of a TLS failure behind a connect error (a timeout counts), else None.

    redis-py before 5.1 turns an ``ssl.SSLError`` into "Error 1 connecting to ...": the
    reason is read from the chained exception.
    """
    if isinstance(exc, RedisTimeoutError):
        return str(exc)
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "SSL" in str(seen):
            return f"{exc}: {seen}" if seen is not exc else str(exc)
        seen = seen.__cause__ or seen.__context__
    return None

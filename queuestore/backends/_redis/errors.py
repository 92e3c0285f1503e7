"""Translate redis-py errors into queuestore errors at the backend boundary.

What a caller may do next decides the class: credentials the server refuses
(``WRONGPASS``, ``NOAUTH``) are :class:`AuthenticationFailedError`, an ACL refusal
(``NOPERM``, also from inside a script) is :class:`PermissionDeniedError`, a TLS
certificate that does not verify, a TLS file that cannot be read or a peer that answers
the handshake with something that is not TLS is :class:`TLSFailedError` -- all permanent.
An unreachable or broken connection stays a retryable :class:`ConnectionFailedError`.

redis-py's cluster client raises :class:`redis.exceptions.RedisClusterException`, which is not
a ``RedisError``: no reachable startup node is a :class:`ConnectionFailedError`; a startup
node that is a plain server (``cluster_mode: true`` against a server without cluster mode) is
a permanent :class:`ConfigurationError` naming ``cluster_mode``.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager

from redis import exceptions as rexc

from queuestore.errors import (
    AuthenticationFailedError,
    BackendError,
    BackendUnavailableError,
    ConfigurationError,
    ConnectionFailedError,
    OperationTimeoutError,
    OutcomeUnknownError,
    PermissionDeniedError,
    QueueMovedError,
    QueueStoreError,
    TLSFailedError,
)

__all__ = ["MOVED_PREFIX", "REDIS_FAILURES", "outcome_unknown", "translate", "translating"]

#: the error reply of a storing script on a queue a migration moved: ``QSMOVED <home JSON>``
MOVED_PREFIX = "QSMOVED "

#: what the backend boundary translates into queuestore errors (queuestore's own pass through)
REDIS_FAILURES = (rexc.RedisError, rexc.RedisClusterException, OSError, TimeoutError)
#: redis-py's words when a startup node answers but is not in cluster mode
_NOT_A_CLUSTER = "Cluster mode is not enabled"

_UNAVAILABLE_PREFIXES = ("OOM", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "LOADING", "BUSY ")

#: the server's words for an ACL refusal (``NOPERM ...``; Redis 7.0 scripts: ``... can't run this command``)
_NOPERM_MARKS = ("NOPERM", "no permissions to", "can't run this command or subcommand")
_AUTH_PREFIXES = ("WRONGPASS", "NOAUTH")
#: transient TLS failures (the peer went away mid-handshake): retryable like any broken connection
_TLS_TRANSIENT = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError, ssl.SSLWantReadError)
_TLS_HINT = (
    "check the server certificate and its host name, options.tls_ca_file, tls_cert_file and "
    "tls_key_file, and that the port serves TLS"
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _in_tls_setup(exc: BaseException) -> bool:
    """A file error raised while the TLS context was loaded (CA, certificate or key file)."""
    tb = exc.__traceback__
    while tb is not None:
        if "SSLContext" in tb.tb_frame.f_code.co_qualname:
            return True
        tb = tb.tb_next
    return False


def _tls_failure(exc: BaseException) -> bool:
    for err in _chain(exc):
        if isinstance(err, ssl.SSLError) and not isinstance(err, _TLS_TRANSIENT):
            return True
        if isinstance(err, FileNotFoundError | PermissionError | IsADirectoryError) and _in_tls_setup(err):
            return True
    return False


def _permission_denied(exc: BaseException) -> bool:
    if isinstance(exc, rexc.NoPermissionError):
        return True
    text = str(exc)
    return isinstance(exc, rexc.ResponseError) and any(mark in text for mark in _NOPERM_MARKS)


def translate(backend: str, operation: str, exc: BaseException) -> QueueStoreError:
    """Map one redis-py exception to the queuestore error for it (not raised).

    Returns:
        QueueMovedError (a storing script found the queue moved: ``QSMOVED <home>``);
        AuthenticationFailedError, PermissionDeniedError, TLSFailedError or (a cluster
        client against a plain server) ConfigurationError (permanent);
        BackendUnavailableError, OperationTimeoutError or ConnectionFailedError
        (retryable); BackendError for any other server error.
    """
    if isinstance(exc, QueueStoreError):
        return exc
    if isinstance(exc, rexc.ResponseError) and str(exc).startswith(MOVED_PREFIX):
        return QueueMovedError(backend, operation, str(exc)[len(MOVED_PREFIX) :])
    if isinstance(exc, rexc.RedisClusterException):
        return _cluster_failure(backend, operation, exc)
    if isinstance(exc, rexc.BusyLoadingError | rexc.ClusterDownError | rexc.TryAgainError):
        return BackendUnavailableError(backend, operation, exc)
    if isinstance(exc, rexc.AuthenticationError | rexc.AuthorizationError) or (
        isinstance(exc, rexc.ResponseError) and str(exc).upper().startswith(_AUTH_PREFIXES)
    ):
        return AuthenticationFailedError(backend, operation, exc)
    if _permission_denied(exc):
        return PermissionDeniedError(backend, operation, exc)
    if _tls_failure(exc):
        err = TLSFailedError(backend, operation, f"{exc} (TLS: {_TLS_HINT})")
        err.err = exc
        return err
    if isinstance(exc, rexc.TimeoutError | TimeoutError):
        return OperationTimeoutError(backend, operation, exc)
    if isinstance(exc, rexc.ConnectionError | ConnectionError | OSError):
        return ConnectionFailedError(backend, operation, exc)
    if isinstance(exc, rexc.ResponseError) and str(exc).upper().startswith(_UNAVAILABLE_PREFIXES):
        return BackendUnavailableError(backend, operation, exc)
    if isinstance(exc, rexc.RedisError):
        return BackendError(backend, operation, exc)
    return BackendError(backend, operation, exc)


def _cluster_failure(backend: str, operation: str, exc: rexc.RedisClusterException) -> QueueStoreError:
    """A cluster client's own failure: not a cluster (permanent) or no node reachable."""
    if _NOT_A_CLUSTER in str(exc):
        return ConfigurationError(
            "cluster_mode",
            f"backend {backend!r} {operation}: the server is not a Redis Cluster ({exc}); "
            "set cluster_mode: false for a standalone server",
        )
    return ConnectionFailedError(backend, operation, exc)


@contextmanager
def translating(backend: str, operation: str) -> Iterator[None]:
    """Re-raise redis-py (and socket) errors inside the block as queuestore errors.

    Raises:
        AuthenticationFailedError, PermissionDeniedError, TLSFailedError, ConnectionFailedError,
        OperationTimeoutError, BackendUnavailableError, BackendError, ConfigurationError.
    """
    try:
        yield
    except QueueStoreError:
        raise
    except REDIS_FAILURES as exc:
        raise translate(backend, operation, exc) from exc


#: what a call's reply may have been lost to after the server ran it
_LOST_REPLY = (rexc.ConnectionError, rexc.TimeoutError, OSError, TimeoutError)


def outcome_unknown(exc: BaseException) -> OutcomeUnknownError | None:
    """The OutcomeUnknownError a failed mutating call with a call id stands for: its reply was
    lost (the connection broke or timed out, after the client's retries with the same call id),
    or the server's record of the call is unreadable. None for any other failure."""
    if isinstance(exc, OutcomeUnknownError) or not isinstance(exc, BackendError):
        return None
    cause = exc.__cause__
    if isinstance(cause, _LOST_REPLY) or (
        isinstance(cause, rexc.ResponseError) and str(cause).startswith("QSUNKNOWN")
    ):
        return OutcomeUnknownError(exc.backend, exc.operation, cause)
    return None

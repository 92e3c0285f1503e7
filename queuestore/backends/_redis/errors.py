"""Translate redis-py errors into queuestore errors at the backend boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from redis import exceptions as rexc

from queuestore.errors import (
    BackendError,
    BackendUnavailableError,
    ConnectionFailedError,
    OperationTimeoutError,
    QueueStoreError,
)

__all__ = ["translate", "translating"]

_UNAVAILABLE_PREFIXES = ("OOM", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "LOADING", "BUSY ")


def translate(backend: str, operation: str, exc: BaseException) -> QueueStoreError:
    """Map one redis-py exception to the queuestore error for it (not raised)."""
    if isinstance(exc, QueueStoreError):
        return exc
    if isinstance(exc, rexc.BusyLoadingError | rexc.ClusterDownError | rexc.TryAgainError):
        return BackendUnavailableError(backend, operation, exc)
    if isinstance(exc, rexc.AuthenticationError | rexc.AuthorizationError):
        return ConnectionFailedError(backend, operation, exc)
    if isinstance(exc, rexc.TimeoutError | TimeoutError):
        return OperationTimeoutError(backend, operation, exc)
    if isinstance(exc, rexc.ConnectionError | ConnectionError | OSError):
        return ConnectionFailedError(backend, operation, exc)
    if isinstance(exc, rexc.ResponseError) and str(exc).upper().startswith(_UNAVAILABLE_PREFIXES):
        return BackendUnavailableError(backend, operation, exc)
    if isinstance(exc, rexc.RedisError):
        return BackendError(backend, operation, exc)
    return BackendError(backend, operation, exc)


@contextmanager
def translating(backend: str, operation: str) -> Iterator[None]:
    """Re-raise redis-py (and socket) errors inside the block as queuestore errors.

    Raises:
        ConnectionFailedError, OperationTimeoutError, BackendUnavailableError, BackendError.
    """
    try:
        yield
    except QueueStoreError:
        raise
    except (rexc.RedisError, OSError, TimeoutError) as exc:
        raise translate(backend, operation, exc) from exc

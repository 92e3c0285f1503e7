"""The queuestore error tree, its stable codes, and how to classify an error.

Every error raised by queuestore derives from one root::

    QueueStoreError                      INTERNAL_ERROR (root; subclasses set their own code)
    ├── ConfigurationError               INVALID_CONFIGURATION  (field, message)
    ├── InvalidJobError                  INVALID_JOB            (field, message)
    ├── SerializationError               SERIALIZATION_FAILED   (data we cannot decode)
    ├── BackendError                     BACKEND_ERROR...       (backend, operation, err)
    │   ├── ConnectionFailedError        CONNECTION_FAILED      retryable
    │   ├── OperationTimeoutError        TIMEOUT                retryable
    │   ├── OutcomeUnknownError          OUTCOME_UNKNOWN        retryable
    │   ├── BackendUnavailableError      BACKEND_UNAVAILABLE    retryable
    │   ├── BackendClosedError           BACKEND_CLOSED
    │   ├── UnsupportedOperationError    OPERATION_NOT_SUPPORTED
    │   ├── AuthenticationFailedError    AUTHENTICATION_FAILED  (wrong or missing credentials)
    │   ├── PermissionDeniedError        PERMISSION_DENIED      (the ACL refuses a command or key)
    │   └── TLSFailedError               TLS_FAILED             (certificate, CA/key file, handshake)
    ├── NotFoundError
    │   ├── BackendNotFoundError         BACKEND_NOT_FOUND
    │   ├── QueueNotFoundError           QUEUE_NOT_FOUND
    │   ├── JobNotFoundError             JOB_NOT_FOUND
    │   └── MigrationNotFoundError       MIGRATION_NOT_FOUND
    ├── BackendExistsError               BACKEND_EXISTS
    ├── DuplicateJobError                DUPLICATE_JOB
    ├── LeaseLostError                   LEASE_LOST
    └── MigrationError                   MIGRATION_FAILED       (phase, message)
        └── MigrationInProgressError     MIGRATION_IN_PROGRESS

The codes (``ERROR_CODES``) are stable strings: log them, alert on them, match on
them with :func:`error_code`. :func:`is_retryable` says a caller may try the same
call again (the server was unreachable, slow or busy); :func:`is_permanent` says it
never will succeed as asked. An error can be neither (for example a lost lease:
the job is fine, but this holder must let it go).

Passwords never appear in a message: every error's message is redacted when it is made.
"""

from __future__ import annotations

from typing import Final

from queuestore._redact import redact

__all__ = [
    "ERROR_CODES",
    "AuthenticationFailedError",
    "BackendClosedError",
    "BackendError",
    "BackendExistsError",
    "BackendNotFoundError",
    "BackendUnavailableError",
    "ConfigurationError",
    "ConnectionFailedError",
    "DuplicateJobError",
    "InvalidJobError",
    "JobNotFoundError",
    "LeaseLostError",
    "MigrationError",
    "MigrationInProgressError",
    "MigrationNotFoundError",
    "NotFoundError",
    "OperationTimeoutError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "QueueNotFoundError",
    "QueueStoreError",
    "SerializationError",
    "TLSFailedError",
    "UnsupportedOperationError",
    "error_code",
    "is_permanent",
    "is_retryable",
]

ERROR_CODES: Final[frozenset[str]] = frozenset(
    {
        "INTERNAL_ERROR",
        "BACKEND_NOT_FOUND",
        "BACKEND_EXISTS",
        "BACKEND_UNAVAILABLE",
        "BACKEND_CLOSED",
        "CONNECTION_FAILED",
        "TIMEOUT",
        "OUTCOME_UNKNOWN",
        "INVALID_CONFIGURATION",
        "QUEUE_NOT_FOUND",
        "JOB_NOT_FOUND",
        "INVALID_JOB",
        "SERIALIZATION_FAILED",
        "DUPLICATE_JOB",
        "LEASE_LOST",
        "OPERATION_NOT_SUPPORTED",
        "MIGRATION_IN_PROGRESS",
        "MIGRATION_FAILED",
        "MIGRATION_NOT_FOUND",
        "AUTHENTICATION_FAILED",
        "PERMISSION_DENIED",
        "TLS_FAILED",
    }
)


class QueueStoreError(Exception):
    """Root of every queuestore error. ``code`` is one of ``ERROR_CODES``."""

    code: str = "INTERNAL_ERROR"
    retryable: bool = False
    permanent: bool = False

    def __init__(self, message: str = "") -> None:
        self.message = redact(message)
        super().__init__(self.message)


class ConfigurationError(QueueStoreError, ValueError):
    """A configuration value is wrong. ``field`` is its dotted path."""

    code = "INVALID_CONFIGURATION"
    permanent = True

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)
        self.message = redact(message)

    def with_prefix(self, prefix: str) -> ConfigurationError:
        """Return the same error with ``prefix.`` in front of its field path."""
        if not prefix:
            return self
        field = f"{prefix}.{self.field}" if self.field else prefix
        err = type(self).__new__(type(self))
        ConfigurationError.__init__(err, field, self.message)
        return err


class InvalidJobError(QueueStoreError, ValueError):
    """A job or an argument about a job is invalid. ``field`` names it."""

    code = "INVALID_JOB"
    permanent = True

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class SerializationError(QueueStoreError):
    """Stored data could not be decoded (or a value could not be encoded)."""

    code = "SERIALIZATION_FAILED"
    permanent = True


class BackendError(QueueStoreError):
    """An operation on a backend failed.

    Attributes:
        backend: the backend's name.
        operation: what was being done (``enqueue``, ``dequeue``, ``connect``...).
        err: the underlying exception, if any (also ``__cause__``).
    """

    code = "BACKEND_UNAVAILABLE"

    def __init__(self, backend: str, operation: str, err: BaseException | str | None = None) -> None:
        self.backend = backend
        self.operation = operation
        self.err = err
        detail = f": {err}" if err is not None and str(err) else ""
        super().__init__(f"backend {backend!r} {operation} failed{detail}")


class ConnectionFailedError(BackendError):
    """The server could not be reached or the connection broke."""

    code = "CONNECTION_FAILED"
    retryable = True


class OperationTimeoutError(BackendError):
    """The server did not answer in time. The outcome is unknown."""

    code = "TIMEOUT"
    retryable = True


class OutcomeUnknownError(BackendError):
    """A mutating call was sent, but no reply came back even after retrying it with its call id
    (the connection broke or timed out each time): it may or may not have taken effect.

    Retrying the same operation is safe where the operation is idempotent (enqueue by job id,
    ack / nack / move with the lease token); read the job's state to learn the outcome.
    """

    code = "OUTCOME_UNKNOWN"
    retryable = True


class BackendUnavailableError(BackendError):
    """The server answered but cannot serve now (loading, busy, failover, OOM)."""

    code = "BACKEND_UNAVAILABLE"
    retryable = True


class BackendClosedError(BackendError):
    """The backend was closed (or never opened)."""

    code = "BACKEND_CLOSED"
    permanent = True


class UnsupportedOperationError(BackendError):
    """The backend (or the connected server) does not support this operation."""

    code = "OPERATION_NOT_SUPPORTED"
    permanent = True


class AuthenticationFailedError(BackendError):
    """The server refused the credentials: a wrong password or user, or none where one is needed.

    Permanent: the same call fails until the configured credentials are fixed.
    """

    code = "AUTHENTICATION_FAILED"
    permanent = True


class PermissionDeniedError(BackendError):
    """The server's ACL does not let this user run a command or touch a key the backend needs.

    Permanent: the same call fails until the user's ACL rules are changed.
    """

    code = "PERMISSION_DENIED"
    permanent = True


class TLSFailedError(BackendError):
    """TLS could not be set up: the server's certificate does not verify (unknown CA, wrong
    host name), a CA, certificate or key file is missing or unreadable, or the peer answered
    the handshake with something that is not TLS. (A plain Redis port sends nothing back to
    a TLS handshake: that ends as a retryable ``OperationTimeoutError``.)

    Permanent: the same call fails until the TLS settings (or the server's certificate) change.
    """

    code = "TLS_FAILED"
    permanent = True


class NotFoundError(QueueStoreError):
    """Something named does not exist.

    Its subclasses are also ``KeyError``; ``str()`` is the message, not KeyError's quoted repr.
    """

    code = "JOB_NOT_FOUND"
    permanent = True

    def __str__(self) -> str:
        return self.message


class BackendNotFoundError(NotFoundError, KeyError):
    """No backend (or backend type) of that name."""

    code = "BACKEND_NOT_FOUND"


class QueueNotFoundError(NotFoundError, KeyError):
    """No queue of that name is configured."""

    code = "QUEUE_NOT_FOUND"


class JobNotFoundError(NotFoundError, KeyError):
    """No job of that id in the state the operation needs."""

    code = "JOB_NOT_FOUND"

    def __init__(self, job_id: str, message: str = "") -> None:
        self.job_id = job_id
        super().__init__(message or f"job {job_id!r} not found")

    @classmethod
    def not_in_flight(cls, job_id: str, now: str = "") -> JobNotFoundError:
        """The error of an ack, nack or extend_lease whose job holds no lease.

        Args:
            job_id: the job.
            now: where the job is instead (``ready``, ``dead``...), when known; without it
                the job is gone, most likely acknowledged already.
        """
        if now:
            return cls(job_id, f"job {job_id!r} is not in flight (it is {now})")
        return cls(job_id, f"job {job_id!r} not found: not in flight \u2014 already acked?")


class MigrationNotFoundError(NotFoundError, KeyError):
    """No migration is known for that queue."""

    code = "MIGRATION_NOT_FOUND"


class BackendExistsError(QueueStoreError):
    """A backend type of that name is registered already."""

    code = "BACKEND_EXISTS"
    permanent = True


class DuplicateJobError(QueueStoreError):
    """The job id (or idempotency key) is stored already and duplicates were refused."""

    code = "DUPLICATE_JOB"
    permanent = True

    def __init__(self, job_id: str, message: str = "") -> None:
        self.job_id = job_id
        super().__init__(message or f"job {job_id!r} is already stored")


class LeaseLostError(QueueStoreError):
    """The caller's lease on a job expired and the job was redelivered or moved, or the
    job was deleted while leased.

    The job itself is safe; this holder must stop working on it.
    """

    code = "LEASE_LOST"

    def __init__(self, job_id: str, message: str = "") -> None:
        self.job_id = job_id
        super().__init__(message or f"lease on job {job_id!r} was lost (expired and redelivered)")


class MigrationError(QueueStoreError):
    """A migration failed. ``phase`` is the phase it was in."""

    code = "MIGRATION_FAILED"

    def __init__(self, phase: str, message: str) -> None:
        self.phase = str(phase)
        super().__init__(f"migration failed in phase {self.phase}: {message}")
        self.message = redact(message)


class MigrationInProgressError(MigrationError):
    """A migration of this queue is running already."""

    code = "MIGRATION_IN_PROGRESS"
    retryable = True


def error_code(err: BaseException) -> str:
    """Return the stable code of ``err`` (``"UNKNOWN"`` for a foreign error)."""
    if isinstance(err, QueueStoreError):
        return err.code
    return "UNKNOWN"


def is_retryable(err: BaseException) -> bool:
    """True when the same call may succeed if tried again later."""
    return isinstance(err, QueueStoreError) and err.retryable


def is_permanent(err: BaseException) -> bool:
    """True when the same call will never succeed as asked."""
    return isinstance(err, QueueStoreError) and err.permanent

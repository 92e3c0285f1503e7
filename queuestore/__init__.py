"""queuestore: the storage layer of a Redis-based job queue.

One contract -- enqueue, reliable dequeue with leases, ack, nack, peek, iterate,
dead-letter -- over pluggable backends (memory, redis-lists, redis-streams,
keydb, dragonfly), chosen per queue in YAML, with live migration between them.
This module only re-exports; the implementation lives in private modules.
Logging is under ``queuestore.<area>`` with a NullHandler (see ``queuestore._logging``).
"""

import queuestore._logging  # noqa: F401  (the package logger's NullHandler)
from queuestore._codec import JobCodec
from queuestore._config import QueueConfig, StorageConfig
from queuestore._config_loader import load_config, load_config_from_file
from queuestore._job import ALL, PRIORITY_MAX, PRIORITY_MIN, AllJobs, Job, JobState
from queuestore._manager import BackendManager
from queuestore._models import (
    BackendCapabilities,
    BackendConfig,
    BackendStats,
    ConnectionPoolStats,
    DefaultsConfig,
    DequeueOptions,
    HealthLevel,
    HealthStatus,
    IterOptions,
)
from queuestore._registry import BackendRegistry, default_registry
from queuestore.abc import BackendFactory, JobRef, MigrationSupport, QueueBackend
from queuestore.errors import (
    AuthenticationFailedError,
    BackendClosedError,
    BackendError,
    BackendExistsError,
    BackendNotFoundError,
    BackendUnavailableError,
    ConfigurationError,
    ConnectionFailedError,
    DuplicateJobError,
    InvalidJobError,
    JobNotFoundError,
    LeaseLostError,
    MigrationError,
    MigrationInProgressError,
    MigrationNotFoundError,
    NotFoundError,
    OperationTimeoutError,
    OutcomeUnknownError,
    PermissionDeniedError,
    QueueMovedError,
    QueueNotFoundError,
    QueueStoreError,
    SerializationError,
    TLSFailedError,
    UnsupportedOperationError,
    error_code,
    is_permanent,
    is_retryable,
)
from queuestore.migration import (
    MigrationManager,
    MigrationOptions,
    MigrationPhase,
    MigrationPlan,
    MigrationStatus,
    MigrationTool,
)

__version__ = "0.1.0"

__all__ = [
    "ALL",
    "PRIORITY_MAX",
    "PRIORITY_MIN",
    "AllJobs",
    "AuthenticationFailedError",
    "BackendCapabilities",
    "BackendClosedError",
    "BackendConfig",
    "BackendError",
    "BackendExistsError",
    "BackendFactory",
    "BackendManager",
    "BackendNotFoundError",
    "BackendRegistry",
    "BackendStats",
    "BackendUnavailableError",
    "ConfigurationError",
    "ConnectionFailedError",
    "ConnectionPoolStats",
    "DefaultsConfig",
    "DequeueOptions",
    "DuplicateJobError",
    "HealthLevel",
    "HealthStatus",
    "InvalidJobError",
    "IterOptions",
    "Job",
    "JobCodec",
    "JobNotFoundError",
    "JobRef",
    "JobState",
    "LeaseLostError",
    "MigrationError",
    "MigrationInProgressError",
    "MigrationManager",
    "MigrationNotFoundError",
    "MigrationOptions",
    "MigrationPhase",
    "MigrationPlan",
    "MigrationStatus",
    "MigrationSupport",
    "MigrationTool",
    "NotFoundError",
    "OperationTimeoutError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "QueueBackend",
    "QueueConfig",
    "QueueMovedError",
    "QueueNotFoundError",
    "QueueStoreError",
    "SerializationError",
    "StorageConfig",
    "TLSFailedError",
    "UnsupportedOperationError",
    "__version__",
    "default_registry",
    "error_code",
    "is_permanent",
    "is_retryable",
    "load_config",
    "load_config_from_file",
]

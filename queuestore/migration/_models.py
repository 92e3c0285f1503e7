"""Migration models: options, phases, status snapshots and plans (msgspec Structs)."""

from __future__ import annotations

import enum
import time
from datetime import timedelta
from typing import Literal

import msgspec

from queuestore._durations import to_seconds
from queuestore.errors import ConfigurationError

__all__ = [
    "TERMINAL_PHASES",
    "MigrationOptions",
    "MigrationPhase",
    "MigrationPlan",
    "MigrationStatus",
]


class MigrationPhase(enum.StrEnum):
    """Where a migration is. The last four are terminal."""

    VALIDATION = "validation"
    DRAINING = "draining"
    COPYING = "copying"
    VERIFYING = "verifying"
    SWITCHING = "switching"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ROLLED_BACK = "rolled_back"


TERMINAL_PHASES = frozenset(
    {MigrationPhase.COMPLETED, MigrationPhase.FAILED, MigrationPhase.CANCELLED, MigrationPhase.ROLLED_BACK}
)


class MigrationOptions(msgspec.Struct, kw_only=True):
    """How to migrate a queue.

    Attributes:
        source_backend: the backend (config name, or type) the queue is on now; ``""``
            means "whatever serves the queue now". When given, it must match.
        target_backend: a backend name from the config, or a backend *type*, meaning
            that type on the source's server.
        drain_first: route new enqueues to the target and wait (up to the deadline)
            until nothing is in flight on the source before copying.
        timeout: the deadline of the whole migration (seconds or timedelta); hitting it
            fails the migration with a MigrationError in the phase it was in.
        batch_size: jobs per hold/import/release step (1..10000).
        verify_data: compare ids and content checksums of what left the source with
            what arrived in the target before switching.
        dry_run: change nothing anywhere; report what would move.
        on_corrupt: ``"fail"`` (default) fails the migration on an entry that does not
            decode; ``"dead_letter"`` sends identifiable corrupt jobs to the target's dead
            state instead. Never skipped silently.
        owner_lease: how long the running process's claim on the queue's migration record
            lasts without renewal (it renews it every few hundred ms): after a crash,
            another process can take the migration over (resume) once it ran out.
        record_retention: how long the record (with the queue's new home) stays in the
            source's store after completion, so that processes started with the old
            config are redirected (0 = keep it until removed).
    """

    source_backend: str = ""
    target_backend: str = ""
    drain_first: bool = True
    timeout: float | timedelta = timedelta(minutes=30)
    batch_size: int = 100
    verify_data: bool = True
    dry_run: bool = False
    on_corrupt: Literal["fail", "dead_letter"] = "fail"
    owner_lease: float | timedelta = 5.0
    record_retention: float | timedelta = timedelta(days=7)

    def timeout_seconds(self) -> float:
        """The deadline in seconds.

        Raises:
            ConfigurationError: not a positive duration (field ``timeout``).
        """
        return to_seconds(self.timeout, "timeout", allow_zero=False)

    def check(self) -> None:
        """Validate the options.

        Raises:
            ConfigurationError: naming the field.
        """
        if not isinstance(self.target_backend, str) or not self.target_backend:
            raise ConfigurationError("target_backend", "must name a backend or a backend type")
        if not isinstance(self.source_backend, str):
            raise ConfigurationError("source_backend", "must be a string")
        size = self.batch_size
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 10_000:
            raise ConfigurationError("batch_size", f"must be an int in 1..10000, got {size!r}")
        if self.on_corrupt not in ("fail", "dead_letter"):
            raise ConfigurationError(
                "on_corrupt", f"must be 'fail' or 'dead_letter', got {self.on_corrupt!r}"
            )
        self.timeout_seconds()
        if to_seconds(self.owner_lease, "owner_lease", allow_zero=False) < 0.5:
            raise ConfigurationError("owner_lease", f"must be at least 0.5s, got {self.owner_lease!r}")
        to_seconds(self.record_retention, "record_retention")


class MigrationStatus(msgspec.Struct, kw_only=True):
    """A snapshot of one migration (a copy: later changes do not show in it).

    ``progress`` is 0..100 over the whole run; ``total_jobs`` is what is known to
    move (it grows when in-flight jobs come back to the source); ``eta_seconds`` is
    from the measured copy rate. Times are epoch seconds. Read from the store (see
    ``MigrationManager.read_migration_status``) it also names the process that owns the
    run (``owner``, with the seconds left on its lease; None once released) and, once
    writes go to the target, the queue's new home (``home``, without secrets).
    """

    migration_id: str
    queue: str
    source_backend: str
    target_backend: str
    phase: MigrationPhase = MigrationPhase.VALIDATION
    progress: float = 0.0
    total_jobs: int = 0
    migrated_jobs: int = 0
    failed_jobs: int = 0
    skipped_jobs: int = 0
    moved_by_state: dict[str, int] = msgspec.field(default_factory=dict)
    in_flight_on_source: int = 0
    eta_seconds: float | None = None
    rate: float | None = None
    started_at: float = msgspec.field(default_factory=time.time)
    updated_at: float = msgspec.field(default_factory=time.time)
    finished_at: float | None = None
    last_error: str | None = None
    failed_phase: MigrationPhase | None = None
    dry_run: bool = False
    verified: bool | None = None
    checksum: str | None = None
    messages: list[str] = msgspec.field(default_factory=list)
    owner: str | None = None
    owner_lease_left: float | None = None
    home: str | None = None

    @property
    def done(self) -> bool:
        """True in a terminal phase (completed, failed, cancelled, rolled_back)."""
        return self.phase in TERMINAL_PHASES


class MigrationPlan(msgspec.Struct, kw_only=True):
    """What :meth:`MigrationTool.plan_migration` found. ``estimated_duration`` is seconds,
    derived from ``sample_rate`` (jobs/s measured on the source and target)."""

    queue_name: str
    migration_id: str
    source_backend: str
    target_backend: str
    job_count: int
    jobs_by_state: dict[str, int]
    held_jobs: int
    estimated_duration: float
    sample_rate: float
    batch_size: int
    requirements: list[str] = msgspec.field(default_factory=list)
    warnings: list[str] = msgspec.field(default_factory=list)
    recommendations: list[str] = msgspec.field(default_factory=list)

"""Live migration of a queue between backends: a move with switch-over and proof.

``MigrationManager`` runs migrations in the background (cancel, resume, roll back,
watch progress); ``MigrationTool`` plans one or runs it to the end. The move is the
hold / write / release protocol of ``queuestore.migration._protocol``; while a
queue migrates, ``manager.get_backend(queue)`` is a routing proxy over both sides.
See docs/migration.md.
"""

from queuestore.migration._manager import MigrationManager
from queuestore.migration._models import MigrationOptions, MigrationPhase, MigrationPlan, MigrationStatus
from queuestore.migration._protocol import content_digest, job_checksum
from queuestore.migration._tool import MigrationTool

__all__ = [
    "MigrationManager",
    "MigrationOptions",
    "MigrationPhase",
    "MigrationPlan",
    "MigrationStatus",
    "MigrationTool",
    "content_digest",
    "job_checksum",
]

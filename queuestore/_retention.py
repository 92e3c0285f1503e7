"""How long dead-lettered jobs are kept: the ``dead_retention`` and ``dead_max`` options.

Every backend's maintenance task drops dead jobs older than ``dead_retention``
(by ``dead_at``) and, past ``dead_max`` dead jobs, the oldest ones, a bounded
batch per pass; each dropped job is counted in ``BackendStats.total_dead_dropped``.
``0`` or ``none`` turns either limit off.
"""

from __future__ import annotations

from typing import Literal

from queuestore._durations import OptionalSeconds
from queuestore.errors import ConfigurationError

__all__ = ["DEFAULT_DEAD_MAX", "DEFAULT_DEAD_RETENTION", "DeadMax", "check_dead_max", "dead_max_limit"]

#: the default ``dead_retention``: 7 days
DEFAULT_DEAD_RETENTION = OptionalSeconds(7 * 86400.0)
#: the default ``dead_max``
DEFAULT_DEAD_MAX = 100_000

#: the ``dead_max`` option's type: a count, or ``none`` / null for no limit
DeadMax = int | Literal["none"] | None


def dead_max_limit(option: DeadMax) -> int:
    """The limit a ``dead_max`` value stands for (0: no limit)."""
    return option if isinstance(option, int) else 0


def check_dead_max(option: DeadMax, field: str = "options.dead_max") -> None:
    """Refuse a negative (or boolean) ``dead_max``.

    Raises:
        ConfigurationError: naming ``field``.
    """
    if isinstance(option, bool) or (isinstance(option, int) and option < 0):
        raise ConfigurationError(field, f"must be an int >= 0 or 'none', got {option!r}")

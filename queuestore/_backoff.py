"""The retry backoff policy: how long a job nacked with ``requeue`` and no ``delay`` waits.

``retry_backoff`` is a backend option: ``none`` (the default) keeps a nacked job
ready at once; a mapping ``{base, factor, max, jitter}`` delays it by
``min(max, base * factor ** retry_count) * (1 + uniform(-jitter, +jitter))``, where
``retry_count`` is the job's count before this nack. Every backend computes the
delay from :class:`RetryBackoff`: the memory backend with :meth:`RetryBackoff.delay`,
the Redis backends by passing :meth:`RetryBackoff.script_args` to their nack script,
which evaluates the same formula next to the stored ``retry_count``.
"""

from __future__ import annotations

import math
import random
from typing import Literal

import msgspec

from queuestore._durations import MAX_SECONDS, Seconds
from queuestore.errors import ConfigurationError

__all__ = ["BackoffOption", "RetryBackoff", "backoff_policy", "check_backoff"]


class RetryBackoff(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """An exponential retry backoff with jitter.

    Attributes:
        base: the delay of the first retry (``retry_count`` 0).
        factor: the growth per retry (>= 1).
        max: the longest delay before jitter.
        jitter: the relative spread, 0 <= jitter <= 1: the delay is multiplied by a
            uniform factor in ``[1 - jitter, 1 + jitter]``.
    """

    base: Seconds = Seconds(1.0)
    factor: float = 2.0
    max: Seconds = Seconds(600.0)
    jitter: float = 0.2

    def spread(self) -> float:
        """A random jitter multiplier in ``[1 - jitter, 1 + jitter]``."""
        if self.jitter == 0:
            return 1.0
        return 1.0 + random.uniform(-self.jitter, self.jitter)

    def raw_delay(self, retry_count: int) -> float:
        """``min(max, base * factor ** retry_count)``, without jitter (no overflow)."""
        if self.factor > 1 and retry_count * math.log(self.factor) > math.log(MAX_SECONDS):
            return float(self.max)
        return float(min(self.max, self.base * self.factor ** max(0, retry_count)))

    def delay(self, retry_count: int, spread: float | None = None) -> float:
        """The delay, in seconds, of a job nacked with ``retry_count`` before this nack.

        Args:
            retry_count: the job's ``retry_count`` before the nack.
            spread: the jitter multiplier (default: a fresh :meth:`spread`).
        """
        return self.raw_delay(retry_count) * (self.spread() if spread is None else spread)

    def script_args(self) -> list[float]:
        """``[base, factor, max, spread]`` for a nack script, which computes
        ``min(max, base * factor ^ retry_count) * spread`` next to the stored count."""
        return [float(self.base), float(self.factor), float(self.max), self.spread()]


#: the option's type: a policy, or ``none`` / null for none
BackoffOption = RetryBackoff | Literal["none"] | None


def backoff_policy(option: BackoffOption) -> RetryBackoff | None:
    """The policy an option value stands for (None: no backoff)."""
    return option if isinstance(option, RetryBackoff) else None


def check_backoff(option: BackoffOption, field: str = "options.retry_backoff") -> None:
    """Range checks of a ``retry_backoff`` option.

    Raises:
        ConfigurationError: naming ``<field>.<name>``.
    """
    policy = backoff_policy(option)
    if policy is None:
        return
    if policy.base <= 0:
        raise ConfigurationError(f"{field}.base", "must be > 0")
    if not math.isfinite(policy.factor) or policy.factor < 1:
        raise ConfigurationError(f"{field}.factor", f"must be a finite number >= 1, got {policy.factor!r}")
    if policy.max < policy.base:
        raise ConfigurationError(f"{field}.max", "must be >= base")
    if not math.isfinite(policy.jitter) or not 0 <= policy.jitter <= 1:
        raise ConfigurationError(f"{field}.jitter", f"must be between 0 and 1, got {policy.jitter!r}")

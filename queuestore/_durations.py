"""Durations: float seconds or ``timedelta`` in Python, ``"30s"`` / ``"5m"`` / ``"100ms"`` in YAML."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any

from queuestore.errors import ConfigurationError

__all__ = ["MAX_SECONDS", "OptionalSeconds", "Seconds", "duration_dec_hook", "to_seconds"]

#: the longest duration accepted: 100 years (longer ones overflow the stores' millisecond clocks)
MAX_SECONDS = 100 * 365.25 * 86400

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


class Seconds(float):
    """A duration in seconds, as a typed config field (parses ``"30s"``)."""

    __slots__ = ()


class OptionalSeconds(float):
    """A duration where 0, ``"none"`` or null means "off" (read as ``0.0``)."""

    __slots__ = ()


def to_seconds(value: Any, field: str = "duration", *, allow_zero: bool = True) -> float:
    """Convert a duration to float seconds.

    Accepts an int or float (seconds), a ``timedelta``, or a string such as
    ``"30s"``, ``"5m"``, ``"100ms"``, ``"1h30m"`` or ``"2.5"``.

    Raises:
        ConfigurationError: the value is not a duration, is negative, is not finite, or is
            longer than :data:`MAX_SECONDS` (100 years).
    """
    if isinstance(value, bool):
        raise ConfigurationError(field, f"expected a duration, got {value!r}")
    if isinstance(value, timedelta):
        secs = value.total_seconds()
    elif isinstance(value, int | float):
        try:
            secs = float(value)
        except OverflowError:  # an int beyond float
            too_long = f"duration must be at most {MAX_SECONDS:.0f}s (100 years)"
            raise ConfigurationError(field, too_long) from None
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            secs = float(text)
        except ValueError:
            pos, secs = 0, 0.0
            for m in _PART.finditer(text):
                if m.start() != pos:
                    break
                secs += float(m.group(1)) * _UNITS[m.group(2)]
                pos = m.end()
            if pos != len(text) or not text:
                raise ConfigurationError(
                    field, f"invalid duration {value!r} (use e.g. '30s', '5m', '100ms')"
                ) from None
    else:
        raise ConfigurationError(field, f"expected a duration, got {type(value).__name__}")
    if not math.isfinite(secs):
        raise ConfigurationError(field, f"duration must be finite, got {value!r}")
    if secs > MAX_SECONDS:
        raise ConfigurationError(
            field, f"duration must be at most {MAX_SECONDS:.0f}s (100 years), got {value!r}"
        )
    if secs < 0 or (secs == 0 and not allow_zero):
        raise ConfigurationError(field, f"duration must be {'>=' if allow_zero else '>'} 0, got {value!r}")
    return secs


def duration_dec_hook(tp: type, obj: Any) -> Any:
    """A msgspec ``dec_hook`` that turns durations into :class:`Seconds`."""
    if tp is Seconds:
        return Seconds(to_seconds(obj))
    if tp is OptionalSeconds:
        off = obj is None or (isinstance(obj, str) and obj.strip().lower() == "none")
        return OptionalSeconds(0.0 if off else to_seconds(obj))
    raise NotImplementedError(f"cannot decode {tp!r}")

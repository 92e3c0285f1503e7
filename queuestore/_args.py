"""Argument glue shared by every backend: job references, ids, durations, queue checks, wire
text, typed options.

Each helper turns one kind of caller input into what a backend works with, or raises
the typed error that names the offending argument. Nothing here talks to a store.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar

import msgspec

from queuestore._durations import duration_dec_hook, to_seconds
from queuestore._job import Job, utf8_text
from queuestore._models import DequeueOptions
from queuestore.errors import ConfigurationError, InvalidJobError, SerializationError

__all__ = [
    "JobRef",
    "check_job_queue",
    "check_queue_name",
    "checked_job_ids",
    "dequeue_options",
    "job_ref",
    "misfit_field",
    "parse_options",
    "seconds_arg",
    "text",
    "utf8_or_none",
    "validation_path",
]

#: what ``ack``, ``nack``, ``move`` and ``extend_lease`` take: the dequeued ``Job`` or a bare id
JobRef = Job | str
_StructT = TypeVar("_StructT", bound=msgspec.Struct)

_AT = re.compile(r" - at `\$(.*)`\Z", re.DOTALL)
_UNKNOWN = re.compile(r"unknown field `([^`]*)`")


def job_ref(job: JobRef) -> tuple[str, str | None]:
    """Split a job argument into ``(job_id, lease_token or None)``.

    Raises:
        InvalidJobError: neither a Job nor a non-empty str, or a Job whose id or lease token is
            not a non-empty str that UTF-8 can carry (someone altered it).
    """
    if isinstance(job, Job):
        job_id, token = job.id, job.lease_token
        if not utf8_text(job_id):
            raise InvalidJobError("id", "must be a non-empty str without lone surrogates")
        if token is not None and not utf8_text(token):
            raise InvalidJobError("lease_token", "must be None or a lease token that dequeue returned")
        return job_id, token
    if isinstance(job, str) and job:
        if not utf8_text(job):
            raise InvalidJobError("job", "must be a job id without lone surrogates")
        return job, None
    raise InvalidJobError("job", f"expected a Job or a non-empty job id, got {job!r}")


def checked_job_ids(job_ids: Sequence[str]) -> list[str]:
    """The ids of a ``get_jobs``-style call as a list, checked.

    Raises:
        InvalidJobError: ``job_ids`` is a single string, or holds a non-str or an id UTF-8
            cannot carry.
    """
    if isinstance(job_ids, str | bytes):
        raise InvalidJobError("job_ids", "expected a sequence of job ids, got a single string")
    ids = list(job_ids)
    for job_id in ids:
        if not isinstance(job_id, str):
            raise InvalidJobError("job_ids", f"job ids are str, got {type(job_id).__name__}")
        if job_id and not utf8_text(job_id):
            raise InvalidJobError("job_ids", "a job id UTF-8 cannot carry (a lone surrogate)")
    return ids


def dequeue_options(options: object, op: str = "dequeue") -> DequeueOptions:
    """The options of a ``dequeue`` / ``dequeue_many`` call (None: the defaults).

    Raises:
        TypeError: ``options`` is not a DequeueOptions (``dequeue(1.0)`` names the fix:
            ``dequeue(DequeueOptions(timeout=1.0))``).
    """
    if options is None:
        return DequeueOptions()
    if isinstance(options, DequeueOptions):
        return options
    if isinstance(options, int | float | timedelta) and not isinstance(options, bool):
        raise TypeError(
            f"{op}() takes a DequeueOptions, not a bare timeout: "
            f"use {op}(DequeueOptions(timeout={options!r}))"
        )
    raise TypeError(f"{op}() takes a DequeueOptions or None, got {type(options).__name__}")


def seconds_arg(value: float | timedelta, field: str, *, allow_zero: bool = True) -> float:
    """A duration argument of a backend call, in seconds.

    Raises:
        InvalidJobError: naming ``field`` when it is negative, not finite or not a duration.
    """
    try:
        return to_seconds(value, field, allow_zero=allow_zero)
    except ConfigurationError as exc:
        raise InvalidJobError(field, exc.message) from None


def check_queue_name(name: object, field: str = "queue") -> str:
    """Check a queue name: 1..200 printable characters, no whitespace, no braces (a queue
    name is a Redis hash tag, ``{queue}``, so every backend takes the same names).

    Raises:
        ConfigurationError: naming ``field``; the message names the offending characters.
    """
    if not isinstance(name, str) or not name or len(name) > 200:
        raise ConfigurationError(field, f"queue name must be 1..200 characters, got {name!r}")
    bad = sorted({c for c in name if c in "{}" or c.isspace() or not c.isprintable()})
    if bad:
        raise ConfigurationError(
            field,
            f"queue name {name!r} contains forbidden characters {bad!r} (no whitespace, control "
            "characters or braces)",
        )
    return name


def check_job_queue(job: Job, queue: str) -> None:
    """Refuse a job stamped for another queue than the backend's.

    Raises:
        InvalidJobError: naming ``queue``.
    """
    if job.queue and job.queue != queue:
        raise InvalidJobError("queue", f"job is for queue {job.queue!r}, this backend serves {queue!r}")


def text(value: Any) -> str:
    """A reply value from the store as ``str`` (bytes are UTF-8).

    Raises:
        SerializationError: bytes that are not UTF-8 (something else wrote them into our keys),
            naming their first bytes.
    """
    if not isinstance(value, bytes):
        return str(value)
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise SerializationError(f"a value read from the store is not UTF-8: {value[:60]!r}") from None


def utf8_or_none(value: Any) -> str | None:
    """:func:`text` of a reply value, or None when it is None or bytes that are not UTF-8 (an
    id something else wrote into our keys, which no job can carry)."""
    if value is None:
        return None
    try:
        return text(value)
    except SerializationError:
        return None


def validation_path(message: str) -> tuple[str, str]:
    """Split a msgspec validation message into ``(path, message)``.

    ``path`` is dotted and relative to the validated object (``""`` for the object
    itself; ``"options.pool_size"``; ``"retry.max"``), with an unknown field's name
    appended; ``message`` is the text without msgspec's `` - at `$...` `` suffix.
    """
    path = ""
    at = _AT.search(message)
    if at:
        path, message = at.group(1).lstrip("."), message[: at.start()]
    unknown = _UNKNOWN.search(message)
    if unknown:
        path = f"{path}.{unknown.group(1)}" if path else unknown.group(1)
    return path, message


def misfit_field(exc: SerializationError) -> str:
    """The top-level job field named by the msgspec error behind ``exc``, a job that encoded
    but does not decode back (``metadata`` for ``$.metadata['k']``, ``tags`` for ``$.tags[1]``;
    ``job`` when it names none)."""
    path = validation_path(str(exc.__cause__))[0] if exc.__cause__ is not None else ""
    return path.partition(".")[0].partition("[")[0] or "job"


def parse_options(options_type: type[_StructT], options: dict[str, Any], prefix: str = "options") -> _StructT:
    """Turn a generic options mapping into a typed (forbid-unknown-fields) Struct.

    Raises:
        ConfigurationError: naming ``<prefix>.<field>`` for an unknown or mistyped option.
    """
    try:
        return msgspec.convert(options, options_type, dec_hook=duration_dec_hook, strict=False)
    except ConfigurationError as exc:  # pragma: no cover - raised by the dec_hook path
        raise exc.with_prefix(prefix) from None
    except msgspec.ValidationError as exc:
        path, msg = validation_path(str(exc))
        raise ConfigurationError(f"{prefix}.{path}" if path else prefix, msg) from None

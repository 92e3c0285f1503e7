"""Logging: stdlib loggers under ``queuestore.<area>``, silent until the application configures logging.

The package logger ``queuestore`` has a :class:`logging.NullHandler` (importing queuestore
never prints). Areas: ``queuestore.manager``, ``queuestore.migration``,
``queuestore.backends.<package>`` (``redis_lists``, ``redis_streams``, ``memory``).

Event lines carry their figures twice: in the message (``key=value``, passwords redacted)
and as structured ``extra`` attributes of the record (``record.event``, ``record.queue``,
``record.backend``, ``record.reclaimed`` ...) for JSON formatters. Events:

``sweep``
    a sweep (maintenance, or the one every dequeue runs first) reclaimed expired leases,
    dead-lettered jobs past ``max_retries``, buried undecodable entries ("garbage") or
    dropped expired jobs: WARNING when it dead-lettered or buried anything, else INFO.
``dead_lettered``
    a nack sent a job to the dead-letter state (WARNING).
``buried``
    an entry that does not decode was dead-lettered with its raw bytes kept (WARNING).
"""

from __future__ import annotations

import logging
from typing import Any

from queuestore._redact import redact

__all__ = ["ROOT_LOGGER", "get_logger", "log_buried", "log_dead_lettered", "log_event", "log_sweep"]

ROOT_LOGGER = "queuestore"
logging.getLogger(ROOT_LOGGER).addHandler(logging.NullHandler())


def get_logger(area: str) -> logging.Logger:
    """The logger of ``area`` (``"backends.redis_lists"`` -> ``queuestore.backends.redis_lists``)."""
    return logging.getLogger(f"{ROOT_LOGGER}.{area}")


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log ``event`` with ``fields`` in the message and as ``extra`` attributes of the record."""
    if not logger.isEnabledFor(level):
        return
    text = " ".join(f"{key}={redact(value)}" for key, value in fields.items())
    logger.log(level, "%s %s", event, text, extra={"event": event, **fields}, stacklevel=3)


def log_sweep(
    logger: logging.Logger,
    queue: str,
    backend: str,
    *,
    reclaimed: int = 0,
    dead_lettered: int = 0,
    buried: int = 0,
    expired: int = 0,
) -> None:
    """One ``sweep`` line when a sweep did something (nothing is logged for an idle sweep)."""
    if not (reclaimed or dead_lettered or buried or expired):
        return
    level = logging.WARNING if dead_lettered or buried else logging.INFO
    log_event(
        logger,
        level,
        "sweep",
        queue=queue,
        backend=backend,
        reclaimed=reclaimed,
        dead_lettered=dead_lettered,
        buried=buried,
        expired=expired,
    )


def log_dead_lettered(logger: logging.Logger, queue: str, backend: str, job_id: str) -> None:
    """A nack dead-lettered ``job_id``."""
    log_event(logger, logging.WARNING, "dead_lettered", queue=queue, backend=backend, job_id=job_id)


def log_buried(logger: logging.Logger, queue: str, backend: str, job_id: str, reason: str) -> None:
    """An undecodable entry was dead-lettered as ``job_id`` (a placeholder keeping its bytes)."""
    log_event(logger, logging.WARNING, "buried", queue=queue, backend=backend, job_id=job_id, reason=reason)

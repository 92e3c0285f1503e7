"""Running a command's coroutine and turning what it raises into an exit code and a message.

Exit codes: 0 success; 1 an operation failed (or something is unhealthy); 2 bad usage or
configuration; 130 interrupted; 124 a wait timed out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import msgspec

from queuestore._redact import redact
from queuestore.cli._output import Out
from queuestore.cli._target import UsageError
from queuestore.errors import ConfigurationError, QueueStoreError, error_code

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_USAGE", "execute", "report"]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _leaf(exc: BaseException) -> BaseException:
    """The single error inside (nested) exception groups, or ``exc`` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def report(out: Out, exc: BaseException) -> int | None:
    """Print ``exc`` for the operator and return its exit code; None for errors that are bugs."""
    exc = _leaf(exc)
    doc: dict[str, Any]
    if isinstance(exc, KeyboardInterrupt):
        out.note("interrupted")
        return EXIT_INTERRUPTED
    if isinstance(exc, UsageError):
        code, doc = EXIT_USAGE, {"error": str(exc), "code": "USAGE"}
    elif isinstance(exc, ConfigurationError):
        doc = {"error": redact(exc), "code": error_code(exc), "field": exc.field}
        code = EXIT_USAGE
    elif isinstance(exc, QueueStoreError):
        code, doc = EXIT_FAILED, {"error": redact(exc), "code": error_code(exc)}
    elif isinstance(exc, OSError | msgspec.DecodeError):
        code, doc = EXIT_FAILED, {"error": redact(exc), "code": type(exc).__name__}
    else:
        return None
    if out.json:
        out.data(doc)
    else:
        prefix = "" if doc["code"] == "USAGE" else f"[{doc['code']}] "
        out.error(f"{prefix}{doc['error']}")
    return code


def execute(out: Out, func: Callable[[], Awaitable[int]]) -> int:
    """Run ``func`` in a fresh event loop; return its exit code or that of what it raised.

    Raises:
        BaseException: anything that is not an operator-facing error (a bug) propagates.
    """
    try:
        return anyio.run(func)
    except BaseException as exc:
        code = report(out, exc)
        if code is None:
            raise
        return code

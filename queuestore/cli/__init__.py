"""The operator CLI: ``queuestore`` (console script) and ``python -m queuestore``.

Needs the ``cli`` extra (click and rich). Without it, :func:`main` prints the pip
command that installs it and returns 2; ``python -m queuestore demo`` still runs.
See docs/cli.md.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

INSTALL_HINT = "the queuestore CLI needs the 'cli' extra: pip install 'queuestore[cli]'"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    Exit codes: 0 success, 1 an operation failed or something is unhealthy, 2 bad
    usage or configuration, 130 interrupted (Ctrl-C).
    """
    try:
        from queuestore.cli._app import run
    except ImportError as exc:
        if exc.name not in ("click", "rich") and not str(exc.name or "").startswith(("click.", "rich.")):
            raise
        print(f"{INSTALL_HINT} ({exc.name} is missing)", file=sys.stderr)
        return 2
    return run(list(sys.argv[1:] if argv is None else argv))

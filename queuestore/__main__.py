"""``python -m queuestore``: the operator CLI (``cli`` extra), or the demo without it.

With the ``cli`` extra installed this is the same as the ``queuestore`` console
script (see docs/cli.md). Without it, ``python -m queuestore demo [--jobs N]
[--workers N]`` still runs, and any other command prints the pip command that
installs the extra.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The parser used when the ``cli`` extra is not installed (``demo`` only)."""
    parser = argparse.ArgumentParser(
        prog="python -m queuestore",
        description=(
            "queuestore: the storage layer of a Redis-based job queue. The operator commands "
            "(inspect, health, stats, migrate, ...) need the 'cli' extra: pip install 'queuestore[cli]'."
        ),
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="enqueue, process with concurrent workers, dead-letter a poison job, print stats",
        description=(
            "Run a short demo. Uses $QUEUESTORE_URL if set (redis-lists backend), else a throwaway "
            "local redis-server if one is on PATH, else the in-process memory backend; it says which."
        ),
    )
    demo.add_argument("--jobs", type=_positive_int, default=12, metavar="N", help="jobs to enqueue (12)")
    demo.add_argument("--workers", type=_positive_int, default=3, metavar="N", help="concurrent workers (3)")
    return parser


def cli_installed() -> bool:
    """True when click and rich (the ``cli`` extra) can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("click", "rich"))


def main(argv: Sequence[str] | None = None) -> int:
    """Route to the CLI when the extra is installed, else to the built-in ``demo`` parser."""
    args = list(sys.argv[1:] if argv is None else argv)
    if cli_installed():
        from queuestore.cli import main as cli_main

        return cli_main(args)
    parser = build_parser()
    if args and args[0] not in ("demo", "-h", "--help"):
        from queuestore.cli import INSTALL_HINT

        print(INSTALL_HINT, file=sys.stderr)
        return 2
    parsed = parser.parse_args(args)
    if parsed.command == "demo":
        from queuestore._demo import main as demo_main

        return demo_main(jobs=parsed.jobs, workers=parsed.workers)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

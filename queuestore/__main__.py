"""``python -m queuestore``: small commands that need no extras.

    python -m queuestore demo [--jobs N] [--workers N]

The operator CLI proper (the ``cli`` extra) is separate.
"""

from __future__ import annotations

import argparse
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
    parser = argparse.ArgumentParser(
        prog="python -m queuestore",
        description="queuestore: the storage layer of a Redis-based job queue.",
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from queuestore._demo import main as demo_main

        return demo_main(jobs=args.jobs, workers=args.workers)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

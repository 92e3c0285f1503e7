"""Root test configuration: the real-server fixtures of tests/servers.py (see docs/testing.md),
anyio's backend, the ``cluster`` marker, and SIGTERM handled like Ctrl-C.

Fixtures:
    anyio_backend         "asyncio" (anyio's pytest plugin runs ``async def`` tests on it)
    redis_server, aof_redis_server, redis_cluster, redis_server_factory: see tests/servers.py
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import pytest

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:  # make ``tests.servers`` importable without a tests/__init__.py
    sys.path.insert(0, _ROOT)

pytest_plugins = ["tests.servers"]


def _sigterm_to_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # A plain SIGTERM would end the run without teardown or atexit handlers; treat it as
    # Ctrl-C, so pytest stops the run and the fixtures' teardown stops every server.
    if threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    ):
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "redis_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"

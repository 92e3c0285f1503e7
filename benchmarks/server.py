"""The throwaway server of a benchmark run: a :class:`queuestore.testing.RedisServer` set up
for measuring.

It runs with no persistence (``save ""``, ``appendonly no``: the benchmark measures the client
path, not the disk) and with the slow log off (it keeps up to 128 commands' arguments in
``used_memory``, and what lands there depends on timing: noise in the memory check). The CLI
stops it in a ``finally`` (so also on Ctrl-C, and on SIGTERM, which the CLI turns into
SystemExit); :mod:`queuestore.testing` stops it at interpreter exit as a last resort.
"""

from __future__ import annotations

import os

from queuestore.testing import RedisServer

__all__ = ["BENCH_SERVER_BIN_ENV", "bench_server"]

BENCH_SERVER_BIN_ENV = "QUEUESTORE_BENCH_SERVER_BIN"


def bench_server(binary: str | None = None) -> RedisServer:
    """A throwaway server for one run (not started yet: call ``start()``, later ``cleanup()``).

    Args:
        binary: the server binary; default ``$QUEUESTORE_BENCH_SERVER_BIN``, else what
            :class:`RedisServer` runs (``$QUEUESTORE_TEST_SERVER_BIN`` or ``redis-server``).

    Raises:
        ServerBinaryNotFoundError: the binary is missing.
    """
    return RedisServer(
        binary=binary or os.environ.get(BENCH_SERVER_BIN_ENV) or None,
        extra_args=["--slowlog-log-slower-than", "-1"],
    )

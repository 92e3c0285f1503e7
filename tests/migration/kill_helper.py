"""Run one migration in this process and SIGKILL it at a chosen protocol step.

Used by test_kill.py as ``python tests/migration/kill_helper.py`` with:
QS_URL, QS_QUEUE, QS_SRC_TYPE, QS_SRC_PREFIX, QS_DST_TYPE, QS_DST_PREFIX,
QS_KILL_STEP ("held", "imported", "released", "verifying", "switching") and
QS_KILL_BATCH (the batch number at which to die; 0 for the last two steps).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from queuestore import BackendConfig, BackendManager, QueueConfig, StorageConfig
from queuestore.migration import MigrationOptions, MigrationTool


def config() -> tuple[str, StorageConfig]:
    env = os.environ
    url, queue = env["QS_URL"], env["QS_QUEUE"]
    src = BackendConfig(
        type=env["QS_SRC_TYPE"], name="src", url=url, options={"key_prefix": env["QS_SRC_PREFIX"]}
    )
    dst = BackendConfig(
        type=env["QS_DST_TYPE"], name="dst", url=url, options={"key_prefix": env["QS_DST_PREFIX"]}
    )
    return queue, StorageConfig(backends={"src": src, "dst": dst}, queues={queue: QueueConfig(backend="src")})


async def main() -> None:
    step, batch = os.environ["QS_KILL_STEP"], int(os.environ["QS_KILL_BATCH"])

    async def hook(at: str, n: int) -> None:
        if at == step and n >= batch:
            os.kill(os.getpid(), signal.SIGKILL)

    queue, cfg = config()
    async with await BackendManager.from_config(cfg) as manager:
        await MigrationTool(manager, step_hook=hook).execute_migration(
            queue, MigrationOptions(target_backend="dst", drain_first=False, batch_size=100, owner_lease=1.0)
        )
    print("finished without being killed")


if __name__ == "__main__":
    anyio.run(main)

"""A process of the multi-process migration tests: ``python proc_helper.py ROLE``.

Environment: QS_CONFIG (a YAML config file), QS_QUEUE. Roles:

* ``migrate``: start a migration of the queue to ``dst``, wait for it; print one JSON line
  ``{"phase": ...}`` or ``{"error": <code>, "message": ...}``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from queuestore import BackendManager, StorageConfig, load_config_from_file
from queuestore.errors import QueueStoreError, error_code
from queuestore.migration import MigrationManager, MigrationOptions


def _config() -> StorageConfig:
    return load_config_from_file(os.environ["QS_CONFIG"])


async def migrate() -> None:
    queue = os.environ["QS_QUEUE"]
    async with await BackendManager.from_config(_config()) as manager, MigrationManager(manager) as mm:
        try:
            await mm.start_migration(queue, MigrationOptions(target_backend="dst"))
            final = await mm.wait(queue)
        except QueueStoreError as exc:
            print(json.dumps({"error": error_code(exc), "message": str(exc)}), flush=True)
            return
        print(json.dumps({"phase": str(final.phase)}), flush=True)


if __name__ == "__main__":
    anyio.run({"migrate": migrate}[sys.argv[1]])

"""A process of the multi-process migration tests: ``python proc_helper.py ROLE``.

Each role builds its own BackendManager from the YAML file in QS_CONFIG and works on the
queue QS_QUEUE; files it writes are named by the test. Roles:

* ``migrate``: migrate the queue to ``dst`` (QS_BATCH jobs per batch, QS_PAUSE seconds after
  each batch); print one JSON line ``{"phase": ...}`` or ``{"error": <code>, "message": ...}``.
* ``produce``: enqueue QS_COUNT jobs (batches and single calls, some delayed, priorities 0-9)
  through ``manager.get_backend``; append the id of every job whose enqueue returned True to
  QS_OUT (one per line).
* ``consume``: dequeue through ``manager.get_backend`` and ack (up to 20 jobs, then a pause
  of QS_PAUSE seconds; 100 and no pause once QS_STOP exists), appending each acked id to
  QS_OUT, until the file QS_STOP exists and nothing came for 2 s.
* ``poll``: read the status from the store every 0.1 s, appending one JSON line per read to
  QS_OUT, until QS_STOP exists (and once more then).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TextIO

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from queuestore import BackendManager, DequeueOptions, Job, StorageConfig, load_config_from_file
from queuestore.errors import MigrationNotFoundError, QueueStoreError, error_code
from queuestore.migration import MigrationManager, MigrationOptions

ENV = os.environ


def _stopped() -> bool:
    return Path(ENV["QS_STOP"]).exists()


def _output() -> TextIO:
    return open(ENV["QS_OUT"], "a", encoding="utf-8")


def _config() -> StorageConfig:
    return load_config_from_file(ENV["QS_CONFIG"]).apply_defaults()


async def migrate() -> None:
    queue, pause = ENV["QS_QUEUE"], float(ENV.get("QS_PAUSE", "0"))

    async def hook(step: str, batch: int) -> None:
        if step == "released" and pause:
            await anyio.sleep(pause)

    opts = MigrationOptions(target_backend="dst", batch_size=int(ENV.get("QS_BATCH", "100")), owner_lease=1.0)
    async with (
        await BackendManager.from_config(_config()) as manager,
        MigrationManager(manager, step_hook=hook) as mm,
    ):
        try:
            await mm.start_migration(queue, opts)
            final = await mm.wait(queue)
        except QueueStoreError as exc:
            print(json.dumps({"error": error_code(exc), "message": str(exc)}), flush=True)
            return
        out = {"phase": str(final.phase), "migrated": final.migrated_jobs, "error": final.last_error}
        print(json.dumps(out), flush=True)


async def produce() -> None:
    queue, count = ENV["QS_QUEUE"], int(ENV["QS_COUNT"])
    async with await BackendManager.from_config(_config()) as manager:
        with _output() as out:
            n = 0
            while n < count:
                jobs = [Job(payload={"p": n + i}, priority=(n + i) % 10) for i in range(min(20, count - n))]
                if n % 200 == 0:
                    jobs[0] = jobs[0].delayed(2.0)
                if n % 3 == 0:
                    stored = [await manager.get_backend(queue).enqueue(j) for j in jobs]
                else:
                    stored = await manager.get_backend(queue).enqueue_many(jobs)
                out.writelines(f"{j.id}\n" for j, ok in zip(jobs, stored, strict=True) if ok)
                out.flush()
                n += len(jobs)
                await anyio.sleep(0.01)


async def consume() -> None:
    queue = ENV["QS_QUEUE"]
    idle_since: float | None = None
    async with await BackendManager.from_config(_config()) as manager:
        with _output() as out:
            while True:
                backend = manager.get_backend(queue)
                stopping = _stopped()
                jobs = await backend.dequeue_many(DequeueOptions(count=100 if stopping else 20, timeout=0.2))
                if jobs:
                    done = await backend.ack_many(jobs)
                    assert all(done), [j.id for j, ok in zip(jobs, done, strict=True) if not ok]
                out.writelines(f"{job.id}\n" for job in jobs)
                out.flush()
                if not stopping:
                    await anyio.sleep(float(ENV.get("QS_PAUSE", "0")))
                if jobs:
                    idle_since = None
                elif stopping:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > 2.0:
                        return


async def poll() -> None:
    queue = ENV["QS_QUEUE"]
    cfg = _config()
    async with await BackendManager.from_config(cfg) as manager, MigrationManager(manager) as mm:
        with _output() as out:
            while True:
                last = _stopped()  # one more read after the stop: the final status
                try:
                    st = await mm.read_migration_status(queue)
                    row = {
                        "phase": str(st.phase),
                        "progress": st.progress,
                        "migrated": st.migrated_jobs,
                        "total": st.total_jobs,
                        "owner": st.owner,
                        "mid": st.migration_id,
                    }
                    out.write(json.dumps(row) + "\n")
                    out.flush()
                except MigrationNotFoundError:
                    pass
                if last:
                    return
                await anyio.sleep(0.1)


if __name__ == "__main__":
    anyio.run({"migrate": migrate, "produce": produce, "consume": consume, "poll": poll}[sys.argv[1]])

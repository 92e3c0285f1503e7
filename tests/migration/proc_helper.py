"""A process of the multi-process migration tests: ``python proc_helper.py ROLE``.

Each role builds its own BackendManager from the YAML file in QS_CONFIG and works on the
queue QS_QUEUE; files it writes are named by the test. Roles:

* ``migrate``: migrate the queue to QS_TARGET (default ``dst``; QS_BATCH jobs per batch,
  QS_PAUSE seconds after each batch); with QS_CANCEL_AT, cancel the run (``cancel_migration``)
  once it moved that many jobs; print one JSON line ``{"phase": ..., "mid": ...}`` or
  ``{"error": <code>, "message": ...}``.
* ``rollback``: roll back the queue's incomplete migration to QS_TARGET (in a process that
  did not run it); print one JSON line as ``migrate`` does.
* ``produce``: enqueue QS_COUNT jobs (batches and single calls, some delayed, priorities 0-9)
  through ``manager.get_backend`` (with QS_UNTIL_STOP, until QS_STOP exists, QS_PAUSE seconds
  between batches); append the id of every job whose enqueue returned True to QS_OUT (one per
  line).
* ``consume``: dequeue through ``manager.get_backend`` and ack (up to 20 jobs, then a pause
  of QS_PAUSE seconds; 100 and no pause once QS_STOP exists), appending each acked id to
  QS_OUT, until the file QS_STOP exists and nothing came for 2 s.
* ``poll``: read the status from the store every 0.1 s, appending one JSON line per read to
  QS_OUT, until QS_STOP exists (and once more then); with QS_POLL_STORES, also the record in
  the store of each backend of the config (rows with ``"store": <backend name>``).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import TextIO

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from queuestore import BackendManager, DequeueOptions, Job, QueueBackend, StorageConfig, load_config_from_file
from queuestore.abc import MigrationSupport
from queuestore.errors import MigrationNotFoundError, QueueStoreError, error_code
from queuestore.migration import MigrationManager, MigrationOptions, MigrationStatus
from queuestore.migration._record import read_status

ENV = os.environ


def _stopped() -> bool:
    return Path(ENV["QS_STOP"]).exists()


def _output() -> TextIO:
    return open(ENV["QS_OUT"], "a", encoding="utf-8")


def _config() -> StorageConfig:
    return load_config_from_file(ENV["QS_CONFIG"]).apply_defaults()


def _options() -> MigrationOptions:
    target, batch = ENV.get("QS_TARGET", "dst"), int(ENV.get("QS_BATCH", "100"))
    return MigrationOptions(target_backend=target, batch_size=batch, owner_lease=1.0)


async def migrate() -> None:
    queue, pause = ENV["QS_QUEUE"], float(ENV.get("QS_PAUSE", "0"))
    cancel_at = int(ENV.get("QS_CANCEL_AT", "0"))

    async def hook(step: str, batch: int) -> None:
        if step == "released" and pause:
            await anyio.sleep(pause)

    async with (
        await BackendManager.from_config(_config()) as manager,
        MigrationManager(manager, step_hook=hook) as mm,
    ):
        try:
            await mm.start_migration(queue, _options())
            while cancel_at and not (st := mm.get_migration_status(queue)).done:
                if st.phase == "copying" and st.migrated_jobs >= cancel_at:
                    await mm.cancel_migration(queue)
                    break
                await anyio.sleep(0.01)
            final = await mm.wait(queue)
        except QueueStoreError as exc:
            print(json.dumps({"error": error_code(exc), "message": str(exc)}), flush=True)
            return
        out = {
            "phase": str(final.phase),
            "migrated": final.migrated_jobs,
            "error": final.last_error,
            "mid": final.migration_id,
        }
        print(json.dumps(out), flush=True)


async def rollback() -> None:
    queue = ENV["QS_QUEUE"]
    async with await BackendManager.from_config(_config()) as manager, MigrationManager(manager) as mm:
        try:
            final = await mm.rollback_migration(queue, _options())
        except QueueStoreError as exc:
            print(json.dumps({"error": error_code(exc), "message": str(exc)}), flush=True)
            return
        out = {"phase": str(final.phase), "messages": final.messages, "mid": final.migration_id}
        print(json.dumps(out), flush=True)


async def produce() -> None:
    queue, count = ENV["QS_QUEUE"], int(ENV["QS_COUNT"])
    until_stop, pause = "QS_UNTIL_STOP" in ENV, float(ENV.get("QS_PAUSE", "0.01"))
    async with await BackendManager.from_config(_config()) as manager:
        with _output() as out:
            n = 0
            while (not _stopped()) if until_stop else n < count:
                size = 20 if until_stop else min(20, count - n)
                jobs = [Job(payload={"p": n + i}, priority=(n + i) % 10) for i in range(size)]
                if n % 200 == 0:
                    jobs[0] = jobs[0].delayed(2.0)
                if n % 3 == 0:
                    stored = [await manager.get_backend(queue).enqueue(j) for j in jobs]
                else:
                    stored = await manager.get_backend(queue).enqueue_many(jobs)
                out.writelines(f"{j.id}\n" for j, ok in zip(jobs, stored, strict=True) if ok)
                out.flush()
                n += len(jobs)
                await anyio.sleep(pause)


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
        stores: dict[str, QueueBackend] = {}
        if "QS_POLL_STORES" in ENV:
            for name, bcfg in cfg.backends.items():
                bcfg.queue = queue
                stores[name] = await manager.open_backend(bcfg)
        with _output() as out:
            while True:
                last = _stopped()  # one more read after the stop: the final status
                reads: list[tuple[str, MigrationStatus | None]] = []
                with contextlib.suppress(MigrationNotFoundError):
                    reads.append(("", await mm.read_migration_status(queue)))
                for name, store in stores.items():
                    assert isinstance(store, MigrationSupport)
                    reads.append((name, await read_status(store)))
                for store_name, st in reads:
                    if st is None:
                        continue
                    row = {
                        "phase": str(st.phase),
                        "progress": st.progress,
                        "migrated": st.migrated_jobs,
                        "total": st.total_jobs,
                        "owner": st.owner,
                        "mid": st.migration_id,
                    }
                    if store_name:
                        row["store"] = store_name
                    out.write(json.dumps(row) + "\n")
                out.flush()
                if last:
                    return
                await anyio.sleep(0.1)


if __name__ == "__main__":
    roles = {"migrate": migrate, "rollback": rollback, "produce": produce, "consume": consume, "poll": poll}
    anyio.run(roles[sys.argv[1]])

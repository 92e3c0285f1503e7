"""The migration SPI of ``redis-streams``: a holding area per migration id (a stream under the
queue's tag), release, restore in the old dequeue order, and ``import_jobs``.

A held entry that does not decode is held all the same (a rollback restores it) and returned by
``migration_hold`` / ``migration_held`` as a stand-in job: its id (``garbage-<entry id>`` when a
ready entry carried none, ``garbage-dead-<entry id>`` for a dead one), the state it was held from,
the raw body as ``payload`` and ``last_error`` ``"corrupt: <reason>"`` -- as redis-lists does -- so
the migration can refuse it or dead-letter it (``on_corrupt``) by id. It is logged and counted
(``corrupt_entries``) too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from queuestore._args import text
from queuestore._job import Job, JobState, validate_job
from queuestore.backends._redis.scripts import MAX_JOBS_PER_SCRIPT
from queuestore.backends.redis_streams.layout import (
    DECODE_ERRORS,
    HOLDABLE_STATES,
    corrupt_job,
    entry_job,
    fields_map,
    job_args,
)
from queuestore.backends.redis_streams.store import StreamsStore, log
from queuestore.errors import InvalidJobError

__all__ = ["held", "hold", "import_jobs", "release", "restore"]

#: held entries (or queued entries re-appended) per script call of a restore
_RESTORE_PAGE = 500


async def hold(store: StreamsStore, migration_id: str, state: JobState, count: int) -> list[Job]:
    """Take up to ``count`` READY / DELAYED / DEAD jobs into the holding area, in dequeue order
    (a script call per :data:`MAX_JOBS_PER_SCRIPT`).

    Raises:
        InvalidJobError: another state, or an invalid migration id.
        BackendError: the store failed.
    """
    if state not in HOLDABLE_STATES.values():
        raise InvalidJobError("state", f"cannot hold jobs in state {state}")
    keys = [*store.keys.core(), store.keys.held(migration_id)]
    held: list[Job] = []
    while len(held) < count:  # at most MAX_JOBS_PER_SCRIPT a call: no one call holds the server long
        want = min(count - len(held), MAX_JOBS_PER_SCRIPT)
        rows = await store.script("migration_hold", "migrate", keys, ["hold", store.group, want, str(state)])
        held += _held_jobs(store, keys[-1], rows)
        if len(rows) < want:
            break
    return held


async def held(store: StreamsStore, migration_id: str, count: int) -> list[Job]:
    """Jobs in the holding area, in hold order.

    Raises:
        InvalidJobError: an invalid migration id.
        BackendError: the store failed.
    """
    key = store.keys.held(migration_id)
    return _held_jobs(store, key, await store.call("migration_held", "XRANGE", key, "-", "+", "COUNT", count))


def _held_jobs(store: StreamsStore, held_key: str, rows: Any) -> list[Job]:
    """Held entries as Jobs, in hold order; garbage as marked stand-ins (module docstring)."""
    jobs = []
    for hid, fields in rows:
        f = fields_map(fields)
        state = HOLDABLE_STATES.get(f.get("s", b"ready"), JobState.READY)
        try:
            job = entry_job(store.codec, store.queue, f, state)
            if "due" in f:
                job.available_at = int(float(f["due"])) / 1000.0
        except DECODE_ERRORS as exc:
            store.corrupt_entries += 1
            where = f"entry {text(hid)} of {held_key}"
            log.warning("redis-streams %s: held %s (%s) does not decode: %s", store.name, where, state, exc)
            job = corrupt_job(store.queue, f, state, f"held {where} could not be decoded: {exc}")
        jobs.append(job)
    return jobs


async def release(store: StreamsStore, migration_id: str, job_ids: Sequence[str]) -> int:
    """Forget held jobs (they are safe in the target).

    Raises:
        InvalidJobError: an invalid migration id.
        BackendError: the store failed.
    """
    if not job_ids:
        return 0
    keys = [*store.keys.core(), store.keys.held(migration_id)]
    return int(
        await store.script("migration_release", "migrate", keys, ["release", store.group, 0, *job_ids])
    )


async def restore(store: StreamsStore, migration_id: str) -> int:
    """Put held jobs back, keeping the old dequeue order.

    A stream only appends, so held ready jobs are appended and then the ready
    entries that were queued before the restore are re-appended behind them,
    a page per script call (each entry moves atomically).

    Raises:
        InvalidJobError: an invalid migration id.
        BackendError: the store failed.
    """
    keys = [*store.keys.core(), store.keys.held(migration_id)]
    top = await store.call("migration_restore", "XREVRANGE", store.keys.stream, "+", "-", "COUNT", 1)
    total = ready = 0
    while True:
        n, r = await store.script(
            "migration_restore", "migrate", keys, ["restore", store.group, _RESTORE_PAGE]
        )
        if not n:
            break
        total, ready = total + int(n), ready + int(r)
    if ready and top:
        cursor: Any = "0-0"
        while cursor:
            args = ["rotate", store.group, _RESTORE_PAGE, text(top[0][0]), text(cursor)]
            cursor = await store.script("migration_restore", "migrate", keys, args)
    return total


async def import_jobs(store: StreamsStore, jobs: Sequence[Job]) -> list[bool]:
    """Store jobs in their carried state (READY, DELAYED, DEAD), idempotently by id: a script
    call per 1,000 jobs (one that fails part way raises; those stored before stay stored).

    Raises:
        InvalidJobError: a job is invalid or in another state.
        BackendError: the store failed.
    """
    for job in jobs:
        validate_job(job)
        if job.state not in HOLDABLE_STATES.values():
            raise InvalidJobError("state", f"imported jobs must be ready, delayed or dead, not {job.state}")
    if not jobs:
        return []
    rows = [job_args(store.codec, store.queue, job, job.state, idem=False) for job in jobs]
    out: list[bool] = []
    for start in range(0, len(rows), MAX_JOBS_PER_SCRIPT):  # no one call holds the server long
        out += await store.enqueue_rows("import_jobs", rows[start : start + MAX_JOBS_PER_SCRIPT])
    return out

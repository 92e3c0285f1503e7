"""The migration SPI of ``redis-streams``: a holding area per migration id (a stream under the
queue's tag), release, restore in the old dequeue order, and ``import_jobs``.

A held entry that does not decode is held all the same (a rollback restores it) and returned by
``migration_hold`` / ``migration_held`` as a stand-in job: its id (``garbage-<entry id>`` when the
entry carried none), the state it was held from, the raw body as ``payload`` and ``last_error``
``"corrupt: <reason>"`` -- as redis-lists does -- so the migration can refuse it or dead-letter it
(``on_corrupt``) by id. It is logged and counted (``corrupt_entries``) too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from queuestore._job import Job, JobState, validate_job
from queuestore.backends._streams_lookup import StreamsLookupBase
from queuestore.backends._streams_model import (
    DECODE_ERRORS,
    corrupt_job,
    entry_job,
    fields_map,
    job_args,
    ms,
    now_ms,
)
from queuestore.backends._streams_read import log
from queuestore.errors import InvalidJobError

__all__ = ["StreamsMigrationBase"]

_STATE = {b"ready": JobState.READY, b"delayed": JobState.DELAYED, b"dead": JobState.DEAD}


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class StreamsMigrationBase(StreamsLookupBase):
    """The hold / held / release / restore protocol and import, each step one script."""

    # -- migration SPI ---------------------------------------------------------------------------
    async def migration_hold(self, migration_id: str, state: JobState, count: int) -> list[Job]:
        """Take up to ``count`` READY / DELAYED / DEAD jobs into the holding area."""
        if state not in _STATE.values():
            raise InvalidJobError("state", f"cannot hold jobs in state {state}")
        keys = [*self.skeys.core(), self.skeys.held(migration_id)]
        rows = await self._script("migration_hold", "migrate", keys, ["hold", self.group, count, str(state)])
        return self._held_jobs(keys[-1], rows)

    def _held_jobs(self, held_key: str, rows: Any) -> list[Job]:
        """Held entries as Jobs, in hold order; garbage as marked stand-ins (module docstring)."""
        jobs = []
        for hid, fields in rows:
            f = fields_map(fields)
            state = _STATE.get(f.get("s", b"ready"), JobState.READY)
            try:
                job = entry_job(self.codec, self.queue, f, state)
                if "due" in f:
                    job.available_at = int(float(f["due"])) / 1000.0
            except DECODE_ERRORS as exc:
                self.corrupt_entries += 1
                where = f"entry {_s(hid)} of {held_key}"
                log.warning(
                    "redis-streams %s: held %s (%s) does not decode: %s", self.name, where, state, exc
                )
                job = corrupt_job(self.queue, f, state, f"held {where} could not be decoded: {exc}")
            jobs.append(job)
        return jobs

    async def migration_held(self, migration_id: str, count: int = 1000) -> list[Job]:
        """Jobs in the holding area, in hold order."""
        key = self.skeys.held(migration_id)
        return self._held_jobs(
            key, await self._call("migration_held", "XRANGE", key, "-", "+", "COUNT", count)
        )

    async def migration_release(self, migration_id: str, job_ids: Sequence[str]) -> int:
        """Forget held jobs (they are safe in the target)."""
        if not job_ids:
            return 0
        keys = [*self.skeys.core(), self.skeys.held(migration_id)]
        return int(
            await self._script("migration_release", "migrate", keys, ["release", self.group, 0, *job_ids])
        )

    async def migration_restore(self, migration_id: str) -> int:
        """Put held jobs back, keeping the old dequeue order.

        A stream only appends, so held ready jobs are appended and then the ready
        entries that were queued before the restore are re-appended behind them,
        a page per script call (each entry moves atomically).
        """
        keys = [*self.skeys.core(), self.skeys.held(migration_id)]
        top = await self._call("migration_restore", "XREVRANGE", self.skeys.stream, "+", "-", "COUNT", 1)
        total = ready = 0
        while True:
            n, r = await self._script("migration_restore", "migrate", keys, ["restore", self.group, 500])
            if not n:
                break
            total, ready = total + int(n), ready + int(r)
        if ready and top:
            cursor: Any = "0-0"
            while cursor:
                args = ["rotate", self.group, 500, _s(top[0][0]), _s(cursor)]
                cursor = await self._script("migration_restore", "migrate", keys, args)
        return total

    async def import_jobs(self, jobs: Sequence[Job]) -> list[bool]:
        """Store jobs in their carried state (READY, DELAYED, DEAD), idempotently by id.

        Raises:
            InvalidJobError: a job is invalid or in another state.
        """
        for job in jobs:
            validate_job(job)
            if job.state not in _STATE.values():
                raise InvalidJobError(
                    "state", f"imported jobs must be ready, delayed or dead, not {job.state}"
                )
        if not jobs:
            return []
        args: list[Any] = [now_ms(), ms(float(self.options.idempotency_window)), len(jobs)]
        for job in jobs:
            args += job_args(self.codec, self.queue, job, job.state, idem=False)
        res = await self._script("import_jobs", "enqueue", [*self.skeys.core(), self.skeys.idem], args)
        return [bool(r) for r in res]

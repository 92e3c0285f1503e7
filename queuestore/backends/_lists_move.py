"""Moves, maintenance and migration support of the redis-lists backend.

``move`` is one script when both queues share a hash slot (always on a
standalone server). Across cluster slots no script can see both queues, so the
move is three idempotent scripts keyed by the job id: ``move_out`` (source: out
of its state into the ``moving`` set, body and meta kept), ``move_in`` (target:
stored once, with a receipt in the target's ``inbox`` set that outlives the job
for the idempotency window) and ``move_done`` (source: forgotten, or put back at
its old position if the target holds another job with that id). A crash after
any step leaves the job in ``moving``; :meth:`ListsMoves.recover_moves` (run by
the maintenance loop) re-runs the steps, which is safe because each is a no-op
the second time: no loss, no duplicate.

The migration SPI (hold / held / release / restore) keeps a holding set per
migration id under the queue's hash tag; held jobs keep their body, meta and
sequence number, so a restore puts each back at its old position.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import anyio
from redis.crc import key_slot

from queuestore._args import JobRef, job_ref
from queuestore._job import Job, JobState
from queuestore.backends._lists_lookup import ListsLookup
from queuestore.backends._lists_ops import STATE_CODE, key_block
from queuestore.backends._redis.scripts import ScriptCall
from queuestore.errors import ConfigurationError, DuplicateJobError, InvalidJobError, QueueStoreError

__all__ = ["ListsMoves"]


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class ListsMoves(ListsLookup):
    """``move``, the maintenance loop and the migration SPI of the redis-lists backend
    (on top of ``get_jobs``, :class:`~queuestore.backends._lists_lookup.ListsLookup`)."""

    # -- move ----------------------------------------------------------------------------
    async def move(self, job: JobRef, target_queue: str) -> None:
        """Move a job by id to ``target_queue`` on this store; it arrives ready.

        One script when both queues share a slot (always on a standalone server);
        across cluster slots an idempotent move keyed by the job id: out of its
        state into ``moving`` (source), stored once with a receipt (target),
        forgotten (source). A crash at any point is finished by the maintenance loop.

        Raises:
            JobNotFoundError: unknown id, or not movable (held, moving elsewhere).
            LeaseLostError: the given Job's lease is not the current one.
            DuplicateJobError: the target stores another job with that id (nothing moved).
            InvalidJobError: a bad job argument or target queue name.
            BackendError: the store failed.
        """
        job_id, token = job_ref(job)
        if target_queue == self.queue:
            raise InvalidJobError("target_queue", f"job is already in queue {self.queue!r}")
        try:
            target = self.keys.for_queue(target_queue)
        except ConfigurationError as exc:
            raise InvalidJobError("target_queue", exc.message) from None
        if not self.conn.cluster or key_slot(self.keys.base.encode()) == key_slot(target.base.encode()):
            keys = self.block + key_block(target)
            code = await self._script("move", "move", keys, [job_id, token or "", self.queue])
            self.check_code(int(code), job_id)
            return
        keys = [*self.block, self.keys.key("moving")]
        out = await self._script("move", "move_out", keys, [job_id, token or "", target_queue])
        if int(out[0]) == 0 and await self._call("move", "HEXISTS", key_block(target)[1], job_id):
            return  # moved already: a retry is a no-op
        self.check_code(int(out[0]), job_id)
        await self._finish_move(job_id, out[1], out[2], target_queue)

    async def _finish_move(self, job_id: str, body: bytes, meta: bytes, target_queue: str) -> None:
        target = self.keys.for_queue(target_queue)
        keys = [*key_block(target), target.key("inbox")]
        args = [
            job_id,
            body,
            meta,
            self.queue,
            float(self.options.idempotency_window),
            self.options.reclaim_batch,
        ]
        code = int(await self._script("move", "move_in", keys, args))
        mode = "done" if code == 1 else "abort"
        await self._script("move", "move_done", [*self.block, self.keys.key("moving")], [job_id, mode])
        self.check_code(code, job_id)

    async def recover_moves(self, older_than: float = 1.0) -> int:
        """Finish cross-slot moves interrupted by a crash (idempotent; the maintenance loop runs it).

        Raises:
            BackendError: the store failed.
        """
        moving = self.keys.key("moving")
        ids = await self._call(
            "recover",
            "ZRANGEBYSCORE",
            moving,
            "-inf",
            time.time() - older_than,
            "LIMIT",
            0,
            self.options.reclaim_batch,
        )
        done = 0
        for raw in ids:
            job_id = _text(raw)
            out = await self._script("recover", "move_out", [*self.block, moving], [job_id, "", ""])
            if int(out[0]) == 1:
                with contextlib.suppress(DuplicateJobError):  # put back in the source by the abort
                    await self._finish_move(job_id, out[1], out[2], _text(out[3]))
                done += 1
            else:
                await self._script("recover", "move_done", [*self.block, moving], [job_id, "done"])
        return done

    # -- maintenance ---------------------------------------------------------------------
    async def reclaim(self) -> int:
        """Sweep now: reclaim expired leases, promote due jobs, drop expired ones (bounded
        batches, repeated while a batch was full). Returns how many leases were reclaimed.

        Raises:
            BackendError: the store failed.
        """
        total = 0
        for _ in range(1000):
            reply = await self._script(
                "reclaim", "dequeue", self.block, [0, 1, self.options.reclaim_batch, 0]
            )
            counts = [int(x) for x in reply[:5]]
            total += counts[0]
            self.metrics.record("dead", counts[1] + counts[4])
            self.metrics.record("expired", counts[3])
            if max(counts) < self.options.reclaim_batch:
                break
        return total

    async def run_maintenance(self) -> None:
        """Every ``reclaim_interval``: :meth:`reclaim` and finish interrupted cross-slot moves."""
        while True:
            await anyio.sleep(float(self.options.reclaim_interval))
            try:
                await self.reclaim()
                if self.conn.cluster:
                    await self.recover_moves()
            except QueueStoreError:
                pass  # counted in the metrics; the next round (or a dequeue) tries again

    # -- migration -------------------------------------------------------------------------
    def _held(self, migration_id: str) -> list[str]:
        if not isinstance(migration_id, str) or not migration_id:
            raise InvalidJobError("migration_id", "must be a non-empty string")
        return [*self.block, self.keys.key(f"held:{migration_id}")]

    async def migration_hold(self, migration_id: str, state: JobState, count: int) -> list[Job]:
        """Take up to ``count`` jobs in ``state`` (READY, DELAYED or DEAD) into the holding area.

        A held job whose body is missing or does not decode is held all the same (safe:
        a rollback restores it) and returned with ``last_error`` ``"corrupt: <reason>"``
        (and the raw bytes as payload), so the migration can tell it from a real job.

        Raises:
            InvalidJobError: another state, a bad count or migration id.
            BackendError: the store failed.
        """
        if state not in (JobState.READY, JobState.DELAYED, JobState.DEAD):
            raise InvalidJobError("state", f"only ready, delayed and dead jobs can be held, not {state}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidJobError("count", f"must be an int >= 1, got {count!r}")
        reply = await self._script(
            "migration_hold", "hold", self._held(migration_id), [STATE_CODE[state], count]
        )
        return self.read_triples(reply)

    async def migration_held(self, migration_id: str, count: int = 1000) -> list[Job]:
        """Up to ``count`` held jobs, in the order they were held (garbage marked as by
        :meth:`migration_hold`).

        Raises:
            InvalidJobError, BackendError.
        """
        keys = self._held(migration_id)
        return [
            job for _, _, job in await self.page(keys[-1], "offset", "0", "", count, False, "migration_held")
        ]

    async def migration_release(self, migration_id: str, job_ids: Sequence[str]) -> int:
        """Forget held jobs (they are safe in the target). Returns how many.

        Raises:
            InvalidJobError, BackendError.
        """
        keys, ids = self._held(migration_id), list(job_ids)
        if not ids:
            return 0
        size = self.lists_options.batch_size
        calls = [ScriptCall("release", keys, ids[i : i + size]) for i in range(0, len(ids), size)]
        return sum(int(n) for n in await self._scripts("migration_release", calls))

    async def migration_restore(self, migration_id: str) -> int:
        """Put every held job back where it came from, at its old position. Returns how many.

        Raises:
            InvalidJobError, BackendError.
        """
        keys, total = self._held(migration_id), 0
        while True:
            n, left = await self._script("migration_restore", "restore", keys, [self.options.reclaim_batch])
            total += int(n)
            if int(left) == 0:
                return total

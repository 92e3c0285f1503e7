"""The settle side of ``redis-streams``: what a lease holder (or an operator, by bare id) does
with a job -- ack, nack, extend_lease, move -- each one call of the ``settle`` script (a
cross-slot move: park, enqueue in the target, forget; each step idempotent).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from redis.crc import key_slot

from queuestore._args import JobRef, job_ref
from queuestore._durations import to_seconds
from queuestore._job import JobState
from queuestore.backends._redis.keys import validate_queue_name
from queuestore.backends._streams_migrate import StreamsMigrationBase
from queuestore.backends._streams_model import _SEP, LeaseToken, entry_job, fields_map, job_args, ms, now_ms
from queuestore.errors import ConfigurationError, InvalidJobError, JobNotFoundError, LeaseLostError

__all__ = ["StreamsSettleBase"]


def _secs(value: float | timedelta, field: str, *, allow_zero: bool = True) -> float:
    try:
        return to_seconds(value, field, allow_zero=allow_zero)
    except ConfigurationError as exc:
        raise InvalidJobError(field, exc.message) from None


class StreamsSettleBase(StreamsMigrationBase):
    """ack / ack_many / nack / extend_lease / move on top of the read and migration sides."""

    def _guard(self, job: JobRef) -> tuple[str, list[str]]:
        job_id, token = job_ref(job)
        if token is None:
            return job_id, [self.group, "", "", ""]
        return job_id, LeaseToken.decode(token).args()

    def _settle_args(self, op: str, job_id: str, guard: list[str], target: str = "") -> list[Any]:
        return [op, now_ms(), int(self.retain), self.queue, target, job_id, *guard]

    @staticmethod
    def _raise(status: int, job_id: str) -> None:
        if status == -1:
            raise LeaseLostError(job_id)
        if status != 1:
            raise JobNotFoundError(job_id, f"job {job_id!r} is not in flight")

    async def ack(self, job: JobRef) -> None:
        """XACK + XDEL (and bookkeeping) in one script.

        Raises:
            JobNotFoundError, LeaseLostError, BackendError.
        """
        job_id, guard = self._guard(job)
        if self.options.coalesce:
            await self._coalesce("ack", self._ack_flush, (job_id, _SEP.join(guard)))
            return
        args = ["ack", now_ms(), int(self.retain), self.queue, "", 1, job_id, *guard]
        res = await self._script("ack", "settle", self.skeys.core(), args)
        self._raise(int(res[0]), job_id)
        self.metrics.record("ack")

    async def _ack_flush(self, refs: list[tuple[str, str]]) -> list[Any]:
        """Coalesced ``ack`` calls (id, guard joined): one ``acks`` script call; each gets None
        or its own error."""
        args: list[Any] = ["acks", now_ms(), int(self.retain), self.queue, ""]
        args += [f"{guard}{_SEP}{job_id}" for job_id, guard in refs]
        res = await self._script("ack", "settle", self.skeys.core(), args)
        out: list[Any] = []
        for (job_id, _), status in zip(refs, res, strict=True):
            try:
                self._raise(int(status), job_id)
            except (LeaseLostError, JobNotFoundError) as exc:
                out.append(exc)
            else:
                out.append(None)
        self.metrics.record("ack", sum(1 for r in out if r is None))
        return out

    async def ack_many(self, jobs: Sequence[JobRef]) -> list[bool]:
        """Ack several jobs in one script call; False for a stale token or unknown id."""
        if not jobs:
            return []
        # one argument per job ("acks"): the token, then the id; per-argument packing is most of
        # the client's cost of a big ack. Same checks as LeaseToken.decode(token).args().
        args: list[Any] = ["acks", now_ms(), int(self.retain), self.queue, ""]
        add, unguarded = args.append, f"{self.group}{_SEP}{_SEP}{_SEP}{_SEP}"
        for job in jobs:
            job_id, token = job_ref(job)
            if token is None:
                add(unguarded + job_id)
                continue
            parts = token.split(_SEP)
            if len(parts) != 4 or not parts[3].isdigit():
                raise InvalidJobError("lease_token", "not a redis-streams lease token")
            d = str(int(parts[3]))
            if d != parts[3]:
                token = _SEP.join((parts[0], parts[1], parts[2], d))
            add(f"{token}{_SEP}{job_id}")
        res = await self._script("ack", "settle", self.skeys.core(), args)
        out = [int(r) == 1 for r in res]
        self.metrics.record("ack", sum(out))
        return out

    async def nack(
        self, job: JobRef, requeue: bool = True, *, delay: float | timedelta = 0.0, error: str | None = None
    ) -> None:
        """Retry (new entry, or delayed) or dead-letter, and release the old entry, in one script.

        Raises:
            JobNotFoundError, LeaseLostError, InvalidJobError, BackendError.
        """
        secs = _secs(delay, "delay")
        job_id, guard = self._guard(job)
        args = [*self._settle_args("nack", job_id, guard), int(requeue), ms(secs), error or ""]
        res = await self._script("nack", "settle", self.skeys.core(), args)
        self._raise(int(res[0]), job_id)
        self.metrics.record("nack")
        if res[1] == b"dead":
            self.metrics.record("dead")

    async def extend_lease(self, job: JobRef, seconds: float | timedelta) -> float:
        """Move the lease record's deadline to ``seconds`` from now (the entry stays pending).

        Raises:
            JobNotFoundError, LeaseLostError, InvalidJobError, BackendError.
        """
        secs = _secs(seconds, "seconds", allow_zero=False)
        job_id, guard = self._guard(job)
        args = [*self._settle_args("extend", job_id, guard), ms(secs)]
        res = await self._script("extend_lease", "settle", self.skeys.core(), args)
        self._raise(int(res[0]), job_id)
        return time.time() + secs

    async def move(self, job: JobRef, target_queue: str) -> None:
        """Move a job (leased, ready, delayed or dead) to another queue, arriving ready.

        Same slot: one script. Across cluster slots: park it under ``M`` in the
        source, enqueue it in the target (idempotent by id), then forget the
        parked copy -- re-running ``move`` after a crash finishes the job.

        Raises:
            JobNotFoundError, LeaseLostError, InvalidJobError, BackendError.
        """
        try:
            validate_queue_name(target_queue, "target_queue")
        except ConfigurationError as exc:
            raise InvalidJobError("target_queue", exc.message) from None
        job_id, guard = self._guard(job)
        if target_queue == self.queue:
            raise InvalidJobError("target_queue", "is the job's own queue")
        tk = self._target_keys(target_queue)
        if not self.conn.cluster or key_slot(tk.stream.encode()) == key_slot(self.skeys.stream.encode()):
            keys = [*self.skeys.core(), tk.stream, tk.idx, tk.ttl, tk.counters]
            res = await self._script(
                "move", "settle", keys, self._settle_args("move", job_id, guard, target_queue)
            )
            self._raise(int(res[0]), job_id)
            return
        res = await self._script(
            "move", "settle", self.skeys.core(), self._settle_args("moveout", job_id, guard)
        )
        unguarded = guard[1:] == ["", "", ""]
        if int(res[0]) == 0 and unguarded and await self._call("move", "HEXISTS", tk.idx, job_id):
            return  # a retried move that had finished
        self._raise(int(res[0]), job_id)
        moved = entry_job(self.codec, target_queue, fields_map(res[1]), JobState.READY)
        moved.origin_queue, moved.dead_reason, moved.dead_at = self.queue, None, None
        args: list[Any] = [now_ms(), 0, 1, *job_args(self.codec, target_queue, moved, idem=False)]
        await self._script("move", "enqueue", [*tk.core(), tk.idem], args)
        await self._script("move", "settle", self.skeys.core(), self._settle_args("moved", job_id, guard))

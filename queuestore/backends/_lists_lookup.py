"""Reads by id (``get_jobs``) and by page (``iter``; ``page``, which ``migration_held`` uses
too) of the redis-lists backend.

``get_jobs`` runs one read-only script (``lua/lists/lookup.lua``, flag ``no-writes``) per
``batch_size`` ids, the scripts pipelined: one round trip for up to
``batch_size * pipeline_size`` ids. It reads each id's meta (which says the
state) and body, and checks that the meta is listed in its state's set -- the
same test ``enqueue`` uses, so an id reads as stored exactly when enqueueing it
again would be a no-op (a waiting job past its TTL excepted: it reads as gone).

How a job reads:

* ready, delayed, in flight, dead: that state. Jobs are reported as they are
  stored: a delayed job that came due, or a lease past its deadline, shows as
  delayed / in flight until a sweep (a dequeue, peek or the maintenance loop)
  promotes or reclaims it -- until then the old lease holder can still ack it.
* held by a migration: the state it was held from (as the memory backend does).
* on its way to another cluster slot (a cross-slot ``move`` in progress): the
  state it left, until the move finishes and the source forgets it.
* acked, expired, never enqueued: ``None``.
* garbage (a body or meta that is missing or does not decode): a lookup does not
  hide it and cannot repair it, so :class:`~queuestore.errors.SerializationError`
  is raised naming the job ids (dequeue dead-letters such entries with the reason).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from queuestore._args import checked_job_ids
from queuestore._job import Job
from queuestore._models import IterOptions
from queuestore.backends._lists_ops import GARBAGE_META, SET_OF, ListsCore
from queuestore.backends._redis.scripts import ScriptCall
from queuestore.errors import SerializationError

__all__ = ["ListsLookup"]


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class ListsLookup(ListsCore):
    """``get_jobs``, ``page`` and ``iter`` of :class:`~queuestore.backends.redis_lists.RedisListsBackend`."""

    async def page(
        self, set_key: str, mode: str, ref: str, score: str, count: int, reverse: bool, op: str = "iter"
    ) -> list[tuple[str, str, Job]]:
        """One page of a sorted set of this queue: ``(id, score, job)`` in set order."""
        reply = await self._script(
            op, "page", [set_key, self.block[0], self.block[1]], [mode, ref, score, count, int(reverse)]
        )
        out = []
        for i in range(0, len(reply), 4):
            job_id = _text(reply[i])
            out.append((job_id, _text(reply[i + 1]), self.read_job(job_id, reply[i + 2], reply[i + 3])[0]))
        return out

    def iter(self, options: IterOptions | None = None) -> AsyncIterator[Job]:
        """Walk stored jobs page by page: ready in dequeue order, delayed by due time, in
        flight by deadline, dead in the order they died; states in the order given
        (``reverse`` walks it all backwards). ``start_id`` starts at that job (nothing if
        it is in none of the states), ``end_id`` ends after it. A job that changes state
        mid-walk may be seen twice or not at all, never invented.

        Raises:
            InvalidJobError: a bad page size (raised here, before iterating).
            BackendError: the store failed (while iterating).
        """
        opts = options or IterOptions()
        opts.checked_count()
        return self._iter(opts)

    async def _iter(self, opts: IterOptions) -> AsyncIterator[Job]:
        count = opts.checked_count()
        states = list(opts.states)[::-1] if opts.reverse else list(opts.states)
        started = opts.start_id is None
        for state in states:
            set_key = self.block[SET_OF[state]]
            if started:
                page = await self.page(set_key, "offset", "0", "", count, opts.reverse)
            else:
                page = await self.page(set_key, "from", opts.start_id or "", "", count, opts.reverse)
                started = bool(page)
            while page:
                for job_id, _, job in page:
                    if job.state is state and self._in_time(job, opts):
                        yield job
                    if job_id == opts.end_id:
                        return
                if len(page) < count:
                    break
                page = await self.page(set_key, "after", page[-1][0], page[-1][1], count, opts.reverse)

    @staticmethod
    def _in_time(job: Job, opts: IterOptions) -> bool:
        if opts.start_time is not None and job.created_at < opts.start_time:
            return False
        return opts.end_time is None or job.created_at < opts.end_time

    async def get_jobs(self, job_ids: Sequence[str]) -> list[Job | None]:
        """Look jobs up by id in any state (see the module docstring for what each reads as).

        Returns:
            One entry per id, in the given order: the job with ``state`` set (a held
            job: the state it was held from), or None when it is not stored.

        Raises:
            InvalidJobError: ``job_ids`` is not a sequence of str.
            SerializationError: a stored entry is garbage (the job ids are named).
            BackendError: the store failed.
        """
        self._check_open("get_jobs")
        ids = checked_job_ids(job_ids)
        if not ids:
            return []
        size = self.lists_options.batch_size
        calls = [ScriptCall("lookup", self.block, ids[i : i + size]) for i in range(0, len(ids), size)]
        reply: list[Any] = [x for part in await self._scripts("get_jobs", calls) for x in part]
        out: list[Job | None] = []
        garbage: list[tuple[str, str]] = []
        for n, job_id in enumerate(ids):
            status, body, meta = int(reply[3 * n]), reply[3 * n + 1], reply[3 * n + 2]
            if status == 0:
                out.append(None)
                continue
            job, bad = self.read_job(job_id, body, meta) if status == 1 else (None, GARBAGE_META)
            if bad is not None:
                garbage.append((job_id, bad))
            out.append(job)
        if garbage:
            self.metrics.record("error")
            shown = "; ".join(f"{job_id!r}: {why}" for job_id, why in garbage[:5])
            more = f" (and {len(garbage) - 5} more)" if len(garbage) > 5 else ""
            raise SerializationError(
                f"get_jobs: {len(garbage)} stored entries of queue {self.queue!r} are corrupt: {shown}{more}"
            )
        return out

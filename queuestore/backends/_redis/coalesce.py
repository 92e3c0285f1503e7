"""Coalescing of concurrent per-job calls (the ``coalesce`` option): auto-pipelining.

Many tasks awaiting ``dequeue()``, ``ack()`` or ``enqueue()`` at once would each pay one
script round trip (and, on the client, one command's worth of redis-py and asyncio).
With ``coalesce: true`` each such call is queued instead, and the first call of an
event-loop tick schedules one *flush* at the next tick that sends everything queued by
then as one batch script. Each caller still awaits its own future: its own job and lease,
its own result, its own error (a :class:`~queuestore.LeaseLostError` for one ack does
not fail the others; a failed round trip fails every call that was in it, as it would
have failed each of them).

A caller cancelled while its batch is in flight gets nothing: what the batch did for it
stands (as when a call is cancelled during its own script), so a job leased for a
cancelled ``dequeue`` is reclaimed when its lease expires.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

from queuestore.errors import QueueStoreError

__all__ = ["Coalescer", "Flush", "outcomes"]

#: a batch call: one result per item, in order; an exception instance is that item's error
Flush = Callable[[list[Any]], Awaitable[list[Any]]]


def outcomes(
    results: Iterable[tuple[str, int]], check: Callable[[int, str], None]
) -> list[QueueStoreError | None]:
    """A flush's results from a batch script's ``(job id, result code)`` pairs: None where
    ``check(code, job_id)`` passes, else the error it raised for that item."""
    out: list[QueueStoreError | None] = []
    for job_id, code in results:
        try:
            check(code, job_id)
        except QueueStoreError as exc:
            out.append(exc)
        else:
            out.append(None)
    return out


class Coalescer:
    """The pending calls of one backend, per key (an operation and what must be equal for
    calls to share a batch, e.g. the lease length of a dequeue)."""

    def __init__(self) -> None:
        self._pending: dict[Hashable, list[tuple[Any, asyncio.Future[Any]]]] = {}
        self._flushes: dict[Hashable, Flush] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, key: Hashable, flush: Flush, item: Any) -> Any:
        """Queue ``item`` for the next flush of ``key`` and wait for its own result.

        Raises:
            BaseException: this item's error, or the whole batch's.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        batch = self._pending.get(key)
        if batch is None:
            batch = self._pending[key] = []
            self._flushes[key] = flush
            loop.call_soon(self._start, key)
        batch.append((item, fut))
        return await fut

    def _start(self, key: Hashable) -> None:
        batch = self._pending.pop(key)
        flush = self._flushes.pop(key)
        task = asyncio.ensure_future(self._run(flush, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _run(flush: Flush, batch: list[tuple[Any, asyncio.Future[Any]]]) -> None:
        try:
            results = await flush([item for item, _ in batch])
            if len(results) != len(batch):  # pragma: no cover - a flush bug
                raise RuntimeError(f"coalesced flush returned {len(results)} results for {len(batch)}")
        except BaseException as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, fut), result in zip(batch, results, strict=True):
            if fut.done():  # the caller was cancelled
                continue
            if isinstance(result, BaseException):
                fut.set_exception(result)
            else:
                fut.set_result(result)

    async def aclose(self) -> None:
        """Wait for the flushes in flight (their callers get their results or errors)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

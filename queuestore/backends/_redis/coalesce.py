"""Group commit of concurrent per-job calls (the ``coalesce`` option, on by default).

Many tasks awaiting ``dequeue()``, ``ack()`` or ``enqueue()`` at once would each pay one
script round trip (and, on the client, one command's worth of redis-py and asyncio). The
coalescer lets them share batch scripts without slowing a lone caller down:

* a call that finds no batch in flight for its key (an operation and what must be equal for
  calls to share a batch, e.g. the lease length of a dequeue) goes out at once, in its own
  task: no added latency, no event-loop tick. The backends run their plain per-job call then
  (:meth:`Coalescer.begin` / :meth:`Coalescer.end` around it); :meth:`Coalescer.submit` runs
  it as a batch of one;
* calls that arrive while a batch of their key is in flight wait, and go together as one
  batch script as soon as it returns (a *flush*, run as a task of the backend's task group).

Each caller still awaits its own result: its own job and lease, its own error (a
:class:`~queuestore.LeaseLostError` for one ack does not fail the others); a failed round
trip fails every call that was in it, as it would have failed each of them.

A caller cancelled while it waits has had nothing done for it and is left out of the next
flush. A caller cancelled while its batch is in flight gets nothing: what the batch did for
it stands, and the backends hand back a job leased for a cancelled ``dequeue`` (see
``take_share`` / ``give_back_share``). A flush that is itself cancelled (its task group is
cancelled) fails its callers with :class:`~queuestore.errors.OutcomeUnknownError`.

The flush tasks are owned by a task group that the backend opens and closes in the task that
runs its ``async with`` (beside the maintenance loop); a backend opened with ``open()`` alone
has no such task, and the coalescer keeps its flush tasks itself. Either way ``aclose`` waits
for the flushes in flight, and a flush that starts after the backend closed fails its callers
with :class:`~queuestore.errors.BackendClosedError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

import anyio
import anyio.abc

from queuestore.errors import QueueStoreError

__all__ = ["Coalescer", "Flush", "outcomes"]

#: a batch call: one result per item, in order; an exception instance is that item's error
Flush = Callable[[list[Any]], Awaitable[list[Any]]]
#: the error a caller gets when its flush was cancelled under it (the key names the operation)
LostError = Callable[[Hashable], BaseException]

_Waiter = tuple[Any, "asyncio.Future[Any]"]


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
    """The calls of one backend, per key: which key has a batch in flight, and who waits.

    Args:
        lost: the error for the callers of a flush that was cancelled under them.

    Attributes:
        direct: calls that went out at once (nothing of their key was in flight).
        batches: flushes of waiting calls run.
        batched: calls that went out in those flushes.
    """

    def __init__(self, lost: LostError) -> None:
        self._lost = lost
        #: key -> the calls waiting for the batch in flight to return (present = in flight)
        self._waiting: dict[Hashable, list[_Waiter]] = {}
        self._flushes: dict[Hashable, Flush] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.direct = 0
        self.batches = 0
        self.batched = 0

    def attach(self, group: anyio.abc.TaskGroup | None) -> None:
        """Run the flushes in ``group`` from now on (None: keep them here)."""
        self._group = group

    def begin(self, key: Hashable) -> bool:
        """Mark a call of ``key`` in flight when none is, and count it as direct: the caller
        then runs its own call at once and must call :meth:`end` after it (in a ``finally``).
        False when one is in flight already: the caller goes through :meth:`submit`."""
        if key in self._waiting:
            return False
        self._waiting[key] = []
        self.direct += 1
        return True

    def end(self, key: Hashable) -> None:
        """The direct call of ``key`` (see :meth:`begin`) returned: send the calls that waited."""
        self._next(key)

    async def submit(self, key: Hashable, flush: Flush, item: Any) -> Any:
        """Send ``item`` now as a batch of one when nothing of ``key`` is in flight, else
        wait for the batch in flight and go with the next one; return its own result.

        Raises:
            BaseException: this item's error, or the whole batch's.
        """
        if not self.begin(key):
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._waiting[key].append((item, fut))
            self._flushes[key] = flush
            return await fut
        try:
            result = (await flush([item]))[0]
        finally:
            self._next(key)
        if isinstance(result, BaseException):
            raise result
        return result

    def _next(self, key: Hashable) -> None:
        """The batch of ``key`` returned: send the calls that waited for it, if any."""
        batch = [w for w in self._waiting.pop(key) if not w[1].done()]  # cancelled waiters left out
        flush = self._flushes.pop(key, None)
        if not batch or flush is None:
            return
        self._waiting[key] = []
        self._running += 1
        self._idle.clear()
        if self._group is not None:
            self._group.start_soon(self._run, key, flush, batch)
        else:
            task = asyncio.ensure_future(self._run(key, flush, batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, key: Hashable, flush: Flush, batch: list[_Waiter]) -> None:
        try:
            await self._flush(key, flush, batch)
        finally:
            self._running -= 1
            self._next(key)
            if self._running == 0:
                self._idle.set()

    async def _flush(self, key: Hashable, flush: Flush, batch: list[_Waiter]) -> None:
        self.batches += 1
        self.batched += len(batch)
        try:
            results = await flush([item for item, _ in batch])
            if len(results) != len(batch):  # pragma: no cover - a flush bug
                raise RuntimeError(f"coalesced flush returned {len(results)} results for {len(batch)}")
        except BaseException as exc:
            failure = self._lost(key) if isinstance(exc, anyio.get_cancelled_exc_class()) else exc
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(failure)
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
        """Wait for the flushes in flight and those they start (their callers get their
        results or errors)."""
        while self._running:
            await self._idle.wait()

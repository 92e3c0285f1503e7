"""What the role modules of the redis-lists backend work with: one queue's layout, options,
metrics and the backend's runners (scripts, plain commands, the connection), and the call ids
that make a retried mutating script answer with the reply of its first run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis import exceptions as rexc

from queuestore._metrics import OperationMetrics
from queuestore.backends._redis.calls import CallLog, new_call_id
from queuestore.backends._redis.connection import RedisConnection
from queuestore.backends._redis.errors import outcome_unknown
from queuestore.backends._redis.scripts import ScriptCall
from queuestore.backends.redis_lists.layout import ListsLayout
from queuestore.backends.redis_lists.options import RedisListsOptions
from queuestore.errors import BackendError, QueueMovedError

__all__ = ["CallSpec", "ListsContext", "call_id", "chunks"]

T = TypeVar("T")

#: ``await script(op, name, keys, args)``: one script, errors translated, metrics recorded
ScriptRunner = Callable[[str, str, Sequence[str], Sequence[Any]], Awaitable[Any]]
#: ``await scripts(op, calls)``: scripts pipelined, one reply each
PipelineRunner = Callable[[str, Sequence[ScriptCall]], Awaitable[list[Any]]]
#: one script call: its name, keys and arguments
CallSpec = tuple[str, Sequence[str], Sequence[Any]]
#: ``await command(op, *args)``: one plain command
CommandRunner = Callable[..., Awaitable[Any]]


def call_id() -> str:
    """A new call id (:class:`~queuestore.backends._redis.calls.CallIds`; the scripts record a
    call's reply under it)."""
    return new_call_id()


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` cut into consecutive slices of at most ``size``."""
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass(frozen=True, slots=True)
class ListsContext:
    """One queue's collaborators, as the backend hands them to its role modules.

    Attributes:
        name: the backend's name (errors and stats name it).
        layout: the queue's keys and record decoding.
        options: the backend's options.
        metrics: the backend's operation metrics.
        script: runs one script (the backend's error translation and metrics).
        scripts: runs scripts pipelined, ``pipeline_size`` per round trip.
        replies: as ``scripts``, with an entry's error in its place instead of raised.
        command: runs one plain command.
        connection: the open connection (raises BackendClosedError when closed).
        calls: the ids of this instance's calls whose replies came back, for the next call to
            have their records forgotten (see :mod:`~queuestore.backends._redis.calls`).
    """

    name: str
    layout: ListsLayout
    options: RedisListsOptions
    metrics: OperationMetrics
    script: ScriptRunner
    scripts: PipelineRunner
    replies: PipelineRunner
    command: CommandRunner
    connection: Callable[[], RedisConnection]
    calls: CallLog = field(default_factory=CallLog)

    def call_id(self, cid: str = "", *, held: bool = False) -> str:
        """The call id argument of a new mutating call (a new id, or ``cid``), listing the
        received calls whose records the script forgets (see :meth:`CallLog.arg`)."""
        return self.calls.arg(cid or call_id(), held=held)

    @property
    def block(self) -> list[str]:
        """The queue's key block (not to be mutated)."""
        return self.layout.block

    async def mutate(self, op: str, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a mutating script whose arguments carry a call id: a call whose reply was lost
        (the connection broke: the client's own retries; it timed out: up to ``max_retries``
        retries here) is re-sent with the same id, and the script answers a repeated id with
        the reply it recorded, so a retry never acts twice.

        Raises:
            OutcomeUnknownError: no reply came back (see :func:`outcome_unknown`).
            BackendError: the store failed.
        """
        ok = False
        try:
            out = await self._retried(lambda: self.script(op, name, keys, args))
            ok = True
            return out
        finally:
            self.calls.settle(args, ok)

    async def mutate_or_full(self, op: str, lean: CallSpec, full: Callable[[], CallSpec]) -> Any:
        """:meth:`mutate` of a ``lean`` script call ``(name, keys, args)`` that may decline with
        the reply -1 (having stored and recorded nothing), then, when it did, of the call
        ``full()`` makes, whose arguments carry the same call id argument: a lost reply of
        either is answered from the one record. The call id is settled once, after both (a
        record another call could have had forgotten in between would turn a retry into a
        second run).

        Raises:
            OutcomeUnknownError: no reply came back (see :func:`outcome_unknown`).
            BackendError: the store failed.
        """
        ok = False
        try:
            out = await self._retried(lambda: self.script(op, *lean))
            if out == -1:
                spec = full()
                out = await self._retried(lambda: self.script(op, *spec))
            ok = True
            return out
        finally:
            self.calls.settle(lean[2], ok)

    async def _retried(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, re-run while it timed out (``max_retries`` times at most); a lost reply
        left is an OutcomeUnknownError."""
        left = int(self.options.max_retries)
        while True:
            try:
                return await call()
            except BackendError as exc:
                unknown = outcome_unknown(exc)
                if unknown is None:
                    raise
                if left > 0 and isinstance(exc.__cause__, rexc.TimeoutError | TimeoutError):
                    left -= 1
                    continue
                raise unknown from exc.__cause__

    async def run_batches(
        self, op: str, name: str, keys: Sequence[str], batches: Sequence[Sequence[Any]]
    ) -> list[Any]:
        """Run script ``name`` once per argument list (one call directly, several pipelined).

        Returns:
            One reply per argument list, in order.

        Raises:
            BackendError: the store failed (any entry's error is raised).
        """
        if len(batches) == 1:
            return [await self.script(op, name, keys, batches[0])]
        return await self.scripts(op, [ScriptCall(name, keys, args) for args in batches])

    async def mutate_batch_replies(
        self, op: str, name: str, keys: Sequence[str], batches: Sequence[Sequence[Any]]
    ) -> list[Any]:
        """:meth:`mutate_batches`, except that an argument list whose script found the queue
        sealed by a migration has its :class:`~queuestore.errors.QueueMovedError` in its place
        (nothing stored by that script), the other lists' replies kept.

        Raises:
            OutcomeUnknownError: no reply came back (see :func:`outcome_unknown`).
            BackendError: the store failed (any other entry's error is raised).
        """

        async def run() -> list[Any]:
            if len(batches) == 1:
                try:
                    return [await self.script(op, name, keys, batches[0])]
                except QueueMovedError as exc:
                    return [exc]
            out = await self.replies(op, [ScriptCall(name, keys, args) for args in batches])
            for r in out:
                if isinstance(r, BaseException) and not isinstance(r, QueueMovedError):
                    raise r
            return out

        out: list[Any] = []
        try:
            out = await self._retried(run)
            return out
        finally:
            for i, args in enumerate(batches):
                self.calls.settle(args, i < len(out) and not isinstance(out[i], BaseException))

    async def mutate_batches(
        self, op: str, name: str, keys: Sequence[str], batches: Sequence[Sequence[Any]]
    ) -> list[Any]:
        """:meth:`run_batches` for a mutating script whose argument lists each carry a call id.

        Returns:
            One reply per argument list, in order.

        Raises:
            OutcomeUnknownError: no reply came back (see :func:`outcome_unknown`).
            BackendError: the store failed (any entry's error is raised).
        """
        ok = False
        try:
            out = await self._retried(lambda: self.run_batches(op, name, keys, batches))
            ok = True
            return out
        finally:
            for args in batches:
                self.calls.settle(args, ok)

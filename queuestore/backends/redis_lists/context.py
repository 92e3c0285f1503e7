"""What the role modules of the redis-lists backend work with: one queue's layout, options,
metrics and the backend's runners (scripts, plain commands, the connection)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from queuestore._metrics import OperationMetrics
from queuestore.backends._redis.connection import RedisConnection
from queuestore.backends._redis.scripts import ScriptCall
from queuestore.backends.redis_lists.layout import ListsLayout
from queuestore.backends.redis_lists.options import RedisListsOptions

__all__ = ["ListsContext", "chunks"]

T = TypeVar("T")

#: ``await script(op, name, keys, args)``: one script, errors translated, metrics recorded
ScriptRunner = Callable[[str, str, Sequence[str], Sequence[Any]], Awaitable[Any]]
#: ``await scripts(op, calls)``: scripts pipelined, one reply each
PipelineRunner = Callable[[str, Sequence[ScriptCall]], Awaitable[list[Any]]]
#: ``await command(op, *args)``: one plain command
CommandRunner = Callable[..., Awaitable[Any]]


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
        command: runs one plain command.
        connection: the open connection (raises BackendClosedError when closed).
    """

    name: str
    layout: ListsLayout
    options: RedisListsOptions
    metrics: OperationMetrics
    script: ScriptRunner
    scripts: PipelineRunner
    command: CommandRunner
    connection: Callable[[], RedisConnection]

    @property
    def block(self) -> list[str]:
        """The queue's key block (not to be mutated)."""
        return self.layout.block

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

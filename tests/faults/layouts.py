"""What the fault tests need to know of each Redis layout: which script call each operation
is (to arm the proxy on it), and how to read the server's state behind the API (the jobs in
flight, the dead set, the counters). The tests are written once over :data:`LAYOUTS`; only
these reads differ between redis-lists and redis-streams."""

from __future__ import annotations

from typing import Any

from queuestore.abc import QueueBackend
from queuestore.backends.redis_lists import RedisListsBackend, RedisListsFactory
from queuestore.backends.redis_lists.layout import KEY_SUFFIXES
from queuestore.backends.redis_streams import RedisStreamsBackend, RedisStreamsFactory

from .proxy import Match, script_call

__all__ = ["LAYOUTS", "Layout", "ListsLayoutHooks", "StreamsLayoutHooks"]


class Layout:
    """The per-layout hooks (one instance per backend type)."""

    type: str
    factory: Any
    #: operation -> (script name, its op argument or None)
    calls: dict[str, tuple[str, str | None]]

    def call(self, backend: QueueBackend, op: str) -> Match:
        """A proxy match for the script call of ``op`` (enqueue, enqueue_one: a lone ready job,
        dequeue, ack, nack, move, extend;
        the operator calls redrive, redrive_to (to another queue), purge, delete)."""
        script, arg = self.calls[op]
        return script_call(backend.script_set.scripts[script].sha, arg)  # type: ignore[attr-defined]

    async def in_flight(self, direct: Any) -> list[str]:
        """The ids of the jobs leased now, read from the server."""
        raise NotImplementedError

    async def dead(self, direct: Any) -> int:
        """How many jobs the dead set holds."""
        raise NotImplementedError

    async def counters(self, direct: Any) -> dict[str, int] | None:
        """The queue's own counters on the server (None: the layout keeps none there)."""
        raise NotImplementedError

    async def stored(self, direct: Any) -> int:
        """How many jobs wait (lists: ``length()``; streams: entries in the stream)."""
        raise NotImplementedError

    async def lease_deadline(self, direct: Any, job: Any) -> float | None:
        """The deadline (epoch seconds) the server stores for ``job``'s lease."""
        raise NotImplementedError


class ListsLayoutHooks(Layout):
    type = "redis-lists"
    factory = RedisListsFactory
    calls = {
        "enqueue": ("enqueue", "enqueue"),
        "enqueue_one": ("enqueue_one", None),
        "dequeue": ("dequeue", None),
        "ack": ("ack", None),
        "nack": ("nack", None),
        "move": ("move", None),
        "extend": ("extend", None),
        "redrive": ("redrive", None),
        "redrive_to": ("move", None),
        "purge": ("purge", None),
        "delete": ("delete", None),
    }

    @staticmethod
    def key(b: RedisListsBackend, suffix: str) -> str:
        return b.block[KEY_SUFFIXES.index(suffix)]

    async def in_flight(self, direct: RedisListsBackend) -> list[str]:
        return [k.decode() for k in await direct.conn.client.zrange(self.key(direct, "inflight"), 0, -1)]

    async def dead(self, direct: RedisListsBackend) -> int:
        return int(await direct.conn.client.zcard(self.key(direct, "dead")))

    async def counters(self, direct: RedisListsBackend) -> dict[str, int] | None:
        return None

    async def stored(self, direct: RedisListsBackend) -> int:
        return await direct.length()

    async def lease_deadline(self, direct: RedisListsBackend, job: Any) -> float | None:
        score = await direct.conn.client.zscore(self.key(direct, "inflight"), job.id)
        return None if score is None else -float(score)


class StreamsLayoutHooks(Layout):
    type = "redis-streams"
    factory = RedisStreamsFactory

    def call(self, backend: QueueBackend, op: str) -> Match:
        """As :meth:`Layout.call`; a dequeue also matches the EXEC of a take sent as one
        transaction (dequeue_many, coalesced dequeues), the reply that carries its entries."""
        script = super().call(backend, op)
        if op != "dequeue":
            return script

        def match(args: list[bytes]) -> bool:
            return script(args) or (len(args) == 1 and args[0].upper() == b"EXEC")

        return match

    calls = {
        "enqueue": ("enqueue", None),
        "enqueue_one": ("enqueue_one", None),
        "dequeue": ("take", "dequeue"),
        "ack": ("ack", None),
        "nack": ("settle", "nack"),
        "move": ("settle", "move"),
        "extend": ("settle", "extend"),
        "redrive": ("dlq", "redrive"),
        "redrive_to": ("dlq", "redrive"),
        "purge": ("dlq", "purge"),
        "delete": ("dlq", "delete"),
    }

    async def pending(self, direct: RedisStreamsBackend) -> list[str]:
        """The entry ids pending in the backend's group."""
        rows = await direct.conn.client.xpending_range(direct.skeys.stream, direct.group, "-", "+", 100)
        return [r["message_id"].decode() for r in rows]

    async def in_flight(self, direct: RedisStreamsBackend) -> list[str]:
        ids: list[str] = []
        for eid in await self.pending(direct):
            entry = await direct.conn.client.xrange(direct.skeys.stream, eid, eid)
            ids.append(entry[0][1][b"j"].decode() if entry else f"<deleted {eid}>")
        return ids

    async def dead(self, direct: RedisStreamsBackend) -> int:
        return int(await direct.conn.client.xlen(direct.skeys.dead))

    async def counters(self, direct: RedisStreamsBackend) -> dict[str, int] | None:
        raw = await direct.conn.client.hgetall(direct.skeys.counters)
        return {k.decode(): int(v) for k, v in raw.items()}

    async def stored(self, direct: RedisStreamsBackend) -> int:
        return int(await direct.conn.client.xlen(direct.skeys.stream))

    async def lease_deadline(self, direct: RedisStreamsBackend, job: Any) -> float | None:
        eid = job.lease_token.split("\x1f")[2]
        score = await direct.conn.client.zscore(direct.skeys.leases, f"{direct.group}\x1f{eid}")
        return None if score is None else float(score) / 1000


LAYOUTS: dict[str, Layout] = {hooks.type: hooks for hooks in (ListsLayoutHooks(), StreamsLayoutHooks())}

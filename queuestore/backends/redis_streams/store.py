"""What every part of the ``redis-streams`` backend works through: one queue's keys and this
instance's place in it (group, consumer, lease length, retention), its consumer groups, the
backend's metered script and command runners, and the decoding of stored entries.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import anyio
from redis import exceptions as rexc
from redis.exceptions import ResponseError

from queuestore._job import Job, JobState
from queuestore.backends._redis.base import RedisBackendBase
from queuestore.backends._redis.calls import CallLog
from queuestore.backends._redis.connection import RedisConnection
from queuestore.backends._redis.errors import outcome_unknown, translating
from queuestore.backends._redis.keys import QueueKeys
from queuestore.backends._redis.scripts import ScriptSet
from queuestore.backends.redis_streams.layout import (
    StreamKeys,
    call_id,
    entry_job,
    fields_map,
    ms,
)
from queuestore.backends.redis_streams.options import (
    RedisStreamsOptions,
    default_consumer_name,
    lease_length,
)
from queuestore.errors import BackendError, InvalidJobError, SerializationError

__all__ = ["StreamsStore", "log"]

log = logging.getLogger("queuestore.backends.redis_streams")

#: a reply that did not come in time (the client does not retry these by itself)
_TIMED_OUT = (rexc.TimeoutError, TimeoutError)


class StreamsStore:
    """One queue's stream as one backend instance uses it.

    Args:
        backend: the backend whose connection, runners and metrics are used.
        options: its options.
    """

    def __init__(self, backend: RedisBackendBase, options: RedisStreamsOptions) -> None:
        self._backend = backend
        self.name, self.queue, self.codec, self.metrics = (
            backend.name,
            backend.queue,
            backend.codec,
            backend.metrics,
        )
        self.options = options
        self.keys = StreamKeys(backend.keys, options.stream_name)
        self.group = options.consumer_group
        self.consumer = options.consumer_name or default_consumer_name()
        self.claim_min_idle = lease_length(options)
        self.retain = options.retention == "retain"
        #: entries that reads (peek, iter, migration views) skipped because they do not decode,
        #: since open (each skip counts; health reports it as ``corrupt_entries``)
        self.corrupt_entries = 0
        #: the backend's runners: scripts and commands with error translation and metrics
        self.script = backend._script
        self.scripts = backend._scripts
        self.call = backend._call
        self.transaction = backend._transaction
        self.check_open = backend._check_open
        self._groups: set[str] = set()
        #: the ids of this instance's calls whose replies came back, for the next call to have
        #: their records forgotten (see :mod:`~queuestore.backends._redis.calls`)
        self.calls = CallLog()
        #: the keys of the enqueue scripts on this queue
        self.store_keys = [*self.keys.core(), self.keys.idem, self.keys.record]
        k = self.keys
        #: the keys of ``enqueue_one.lua``: those of the enqueue scripts it touches
        self.lone_keys = [k.stream, k.idx, k.delayed, k.counters, k.leases, k.calls, k.calls_at, k.record]

    def call_id(self, cid: str = "", *, held: bool = False) -> str:
        """The call id argument of a new mutating call (a new id, or ``cid``), listing the
        received calls whose records the script forgets (see :meth:`CallLog.arg`)."""
        return self.calls.arg(cid or call_id(), held=held)

    @property
    def script_set(self) -> ScriptSet:
        """The backend's scripts as built for the connected server."""
        return self._backend.script_set

    @property
    def server_kind(self) -> str:
        """The connected server's kind (``redis``, ``valkey``, ``keydb``, ``dragonfly``)."""
        return self._backend.server.kind

    @property
    def conn(self) -> RedisConnection:
        """The backend's connection (BackendClosedError when closed)."""
        return self._backend.conn

    def target_keys(self, queue: str) -> StreamKeys:
        """The keys of another queue of the same prefix and stream name (a ``move`` target)."""
        return StreamKeys(QueueKeys(self.options.key_prefix, queue), self.options.stream_name)

    # -- consumer groups -------------------------------------------------------------------------
    async def ensure_group(self, group: str, *, force: bool = False) -> None:
        """XGROUP CREATE ... 0 MKSTREAM; an existing group (BUSYGROUP) is fine.

        Raises:
            BackendError: the store failed.
        """
        if group in self._groups and not force:
            return
        with translating(self.name, "create_group"):
            try:
                await self.conn.client.execute_command(
                    "XGROUP", "CREATE", self.keys.stream, group, "0", "MKSTREAM"
                )
            except ResponseError as exc:
                if not str(exc).startswith("BUSYGROUP"):
                    raise
        self._groups.add(group)

    async def check_group(self, group: str) -> None:
        """Make sure ``group`` may be read: a configured group (``consumer_group`` or ``groups``)
        is created when missing; another one must already exist on the stream, unless the
        ``create_groups`` option is set (a mistyped per-call group never silently starts a new
        group that reads the whole stream again).

        Raises:
            InvalidJobError: ``group`` is unknown (field ``consumer_group``).
            BackendError: the store failed.
        """
        if group in self._groups:
            return
        if group == self.group or group in self.options.groups or self.options.create_groups:
            await self.ensure_group(group)
            return
        with translating(self.name, "dequeue"):
            try:
                rows = await self.conn.client.execute_command("XINFO", "GROUPS", self.keys.stream)
            except ResponseError:
                rows = []
        names = set()
        for row in rows:
            info = row if isinstance(row, dict) else dict(zip(row[::2], row[1::2], strict=False))
            name = info.get(b"name", info.get("name"))
            names.add(name.decode() if isinstance(name, bytes) else str(name))
        if group not in names:
            raise InvalidJobError(
                "consumer_group",
                f"unknown consumer group {group!r}: name it in options.groups "
                "(or set options.create_groups to create groups on first use)",
            )
        self._groups.add(group)

    async def run_in_group(self, op: str, name: str, keys: list[str], args: list[Any], group: str) -> Any:
        """Run a script; on NOGROUP (stream or group gone, e.g. FLUSHALL) recreate and retry once.

        Raises:
            BackendError: the store failed.
        """
        try:
            return await self.mutate(op, name, keys, args)
        except Exception as exc:
            if "NOGROUP" not in str(exc) and "no such key" not in str(exc):
                raise
        await self.ensure_group(group, force=True)
        return await self.mutate(op, name, keys, args)

    async def mutate(self, op: str, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run a mutating script whose arguments carry a call id, re-sending it (the same id)
        when its reply does not come in time: the client re-sends it after a broken connection,
        this after a timeout (up to ``max_retries`` times). The script answers a repeated id
        with the reply it recorded, so a retry never acts twice.

        Raises:
            OutcomeUnknownError: no reply came back (see :func:`outcome_unknown`).
            BackendError: the store failed.
        """
        ok = False
        try:
            out = await self.run_mutating(op, name, keys, args)
            ok = True
            return out
        finally:
            self.calls.settle(args, ok)

    async def run_mutating(self, op: str, name: str, keys: list[str], args: list[Any]) -> Any:
        """:meth:`mutate` without settling the call id (the caller settles it, once).

        Raises:
            OutcomeUnknownError: no reply came back (see :func:`outcome_unknown`).
            BackendError: the store failed.
        """
        retries = self.options.max_retries
        for attempt in range(retries + 1):
            try:
                return await self.script(op, name, keys, args)
            except BackendError as exc:
                unknown = outcome_unknown(exc)
                if unknown is None:
                    raise
                if attempt < retries and isinstance(exc.__cause__, _TIMED_OUT):
                    # the client does not re-send a timed-out command (without a call id its
                    # outcome is unknown); with one, sending it again is safe: do it here
                    await anyio.sleep(min(1.0, 0.05 * 2**attempt))
                    continue
                raise unknown from exc.__cause__
        raise AssertionError("unreachable")  # pragma: no cover

    # -- scripts shared by several operations ----------------------------------------------------
    def take_args(
        self, mode: str, group: str, consumer: str, count: int, lease: float, cid: str = ""
    ) -> list[Any]:
        """The arguments of the ``take`` script (``dequeue``, ``sweep`` or ``parse`` mode);
        ``cid`` is a dequeue's call id (its record is forgotten once :meth:`CallLog.received`
        says so: a hand-back of the dequeue reads it)."""
        o = self.options
        return [
            mode, group, consumer, count, cid and self.call_id(cid, held=True),
            ms(self.claim_min_idle), o.claim_count,
            o.reclaim_batch, int(self.retain), ms(lease), self.queue, o.max_length,
        ]  # fmt: skip

    async def sweep(self) -> int:
        """Promote due delayed jobs, drop waiting jobs past their TTL, trim retained entries.

        Raises:
            BackendError: the store failed.
        """
        args = self.take_args("sweep", self.group, self.consumer, 1, self.claim_min_idle)
        res = await self.script("sweep", "take", self.keys.core(), args)
        await self.forget_received()
        return int(res[0])

    async def forget_received(self) -> None:
        """Have the records of the calls whose replies came back forgotten now (the next
        mutating call would list them; an idle queue gets this from the maintenance sweep).

        Raises:
            BackendError: the store failed.
        """
        arg = self.calls.flush_arg()
        if not arg:
            return
        ok = False
        try:
            await self.script("sweep", "forget", self.keys.core(), [arg])
            ok = True
        finally:
            self.calls.settle([arg], ok)

    async def enqueue_rows(
        self,
        op: str,
        rows: Sequence[list[Any]],
        target: StreamKeys | None = None,
        window_ms: int | None = None,
    ) -> list[bool]:
        """One ``enqueue`` script call storing jobs given as :func:`~.layout.job_args` rows.

        Args:
            op: the operation named in metrics and errors.
            rows: one row per job.
            target: the keys of the queue to store in (default: this queue).
            window_ms: the idempotency window (default: the ``idempotency_window`` option).

        Returns:
            Per job: True when stored, False when its id (or idempotency key) was already there.

        Raises:
            OutcomeUnknownError: no reply came back, even to the retries with the same call id.
            BackendError: the store failed.
        """
        keys = target or self.keys
        window = ms(float(self.options.idempotency_window)) if window_ms is None else window_ms
        # another queue's records are not this instance's to list: a plain call id there
        args: list[Any] = [call_id() if target else self.call_id(), window, len(rows)]
        for row in rows:
            args += row
        args += [int(self.retain), keys.q.queue]
        res = await self.mutate(op, "enqueue", [*keys.core(), keys.idem, keys.record], args)
        return [bool(r) for r in res]

    # -- decoding --------------------------------------------------------------------------------
    def decoded(self, fields: Any, state: JobState, where: str, deliveries: int = 0) -> Job | None:
        """Decode a stored job; garbage is skipped, but never silently: it is logged and counted.

        ``where`` names the entry (key and entry id, or delayed job id) for the warning.
        """
        try:
            return entry_job(self.codec, self.queue, fields_map(fields), state, deliveries)
        except (SerializationError, ValueError, KeyError) as exc:
            self.corrupt_entries += 1
            log.warning(
                "redis-streams %s: skipping %s (%s): does not decode: %s", self.name, where, state, exc
            )
            return None

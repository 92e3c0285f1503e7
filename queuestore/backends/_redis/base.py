"""What every Redis-protocol backend shares: options, open/close, the probe,
scripts, error translation with metrics, health, and capability truth.

``RedisListsBackend`` and ``RedisStreamsBackend`` subclass
:class:`RedisBackendBase`; the KeyDB and Dragonfly types are dialects of those
two (their own defaults), because the server dialect follows the *probed*
server, not the type name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from importlib.resources.abc import Traversable
from time import perf_counter
from typing import Any, ClassVar, Self, TypeVar

import anyio

from queuestore._codec import JobCodec
from queuestore._metrics import OperationMetrics
from queuestore._models import BackendCapabilities, BackendConfig, HealthLevel, HealthStatus
from queuestore._record import RecordOp, RecordReply
from queuestore.abc import QueueBackend
from queuestore.backends._redis.coalesce import Coalescer, Flush
from queuestore.backends._redis.connection import RedisConnection, acquire_connection
from queuestore.backends._redis.durability import DURABLE_OPS, durability_waits, run_durable
from queuestore.backends._redis.errors import REDIS_FAILURES, translate, translating
from queuestore.backends._redis.health import backend_health
from queuestore.backends._redis.keys import QueueKeys
from queuestore.backends._redis.options import RedisBackendOptions
from queuestore.backends._redis.probe import ServerInfo, probe_server
from queuestore.backends._redis.record import run_record
from queuestore.backends._redis.scripts import ScriptCall, ScriptSet
from queuestore.errors import (
    BackendClosedError,
    ConfigurationError,
    OperationTimeoutError,
    OutcomeUnknownError,
)

__all__ = ["RedisBackendBase"]

_T = TypeVar("_T")

#: seconds a ``dequeue_many`` deadline grows by for each job it asks for: the server's time to
#: lease and send them (25-63 µs a job seen on a slow machine for 10,000-100,000), with room
TAKE_TIME_PER_JOB = 0.0002


class RedisBackendBase(QueueBackend):
    """Base of the Redis backends.

    Subclasses set ``lua_folder`` / ``script_names`` (and optionally ``lua_preamble``)
    and implement the operations with :meth:`_script` / :meth:`_scripts` / :meth:`_call`.
    """

    lua_folder: ClassVar[Traversable]
    script_names: ClassVar[Sequence[str]]
    #: Lua put before the folder's ``_lib.lua`` in every script (see :class:`ScriptSet`)
    lua_preamble: ClassVar[str] = ""

    def __init__(self, config: BackendConfig, options: RedisBackendOptions) -> None:
        super().__init__(config)
        self.config = config
        self.options = options
        self.keys = QueueKeys(options.key_prefix, self.queue)
        self.codec = JobCodec(
            options.encoding,
            compression=options.compression,
            compression_threshold=options.compression_threshold,
        )
        self.metrics = OperationMetrics()
        self._conn: RedisConnection | None = None
        self._server: ServerInfo | None = None
        self._scripts_set: ScriptSet | None = None
        self._durable_waits: list[list[Any]] = []  # WAIT / WAITAOF commands after each durable write
        self._coalescer = Coalescer(self._flush_lost)

    # -- lifecycle -------------------------------------------------------------
    async def _open(self) -> None:
        self._conn = acquire_connection(self.config, self.options)
        try:
            with translating(self.name, "connect"):
                if self._conn.server_info is None:  # probed once per shared connection
                    self._conn.server_info = await probe_server(self._conn.client)
                self._server = self._conn.server_info
                self._scripts_set = ScriptSet(
                    self.lua_folder,
                    self.script_names,
                    self._server.script_header,
                    strict_keys=self.options.strict_keys,
                    preamble=self.lua_preamble,
                )
                await self._scripts_set.load(self._conn.client)
            if self.options.require_noeviction and self._server.maxmemory_policy not in (None, "noeviction"):
                raise ConfigurationError(
                    "options.require_noeviction",
                    f"server maxmemory-policy is {self._server.maxmemory_policy!r}; "
                    "an eviction policy can silently drop queue keys",
                )
            self._durable_waits = durability_waits(self.options, self._server)
        except BaseException:
            conn, self._conn = self._conn, None
            await conn.release()
            raise

    async def __aenter__(self) -> Self:
        """Open, start the maintenance loop, and open the task group that owns the flushes of
        coalesced calls (closed in this task too: the flushes in flight finish first)."""
        await super().__aenter__()
        stack = self._exit_stack
        if stack is not None:
            group = await stack.enter_async_context(anyio.create_task_group())
            self._coalescer.attach(group)
            stack.callback(self._coalescer.attach, None)  # later flushes: kept by the coalescer
        return self

    def _flush_lost(self, key: Hashable) -> BaseException:
        op = key[0] if isinstance(key, tuple) else str(key)
        return OutcomeUnknownError(
            self.name, str(op), RuntimeError("its shared call was cancelled in flight (the task group ended)")
        )

    async def _close(self) -> None:
        await self._coalescer.aclose()
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.release()

    # -- plumbing for subclasses ---------------------------------------------------
    @property
    def conn(self) -> RedisConnection:
        """The shared connection (raises BackendClosedError when closed)."""
        if self._conn is None or self._closed:
            raise BackendClosedError(self.name, "call", "backend is closed" if self._closed else "not open")
        return self._conn

    @property
    def server(self) -> ServerInfo:
        """What the probe found at open."""
        if self._server is None:
            raise BackendClosedError(self.name, "call", "backend is not open")
        return self._server

    @property
    def script_set(self) -> ScriptSet:
        """The scripts as built for the connected server kind."""
        if self._scripts_set is None:
            raise BackendClosedError(self.name, "call", "backend is not open")
        return self._scripts_set

    @property
    def coalescing(self) -> bool:
        """True when concurrent per-job calls share batch scripts (the ``coalesce`` option, on
        by default: a lone call still goes out at once)."""
        return self.options.coalesce

    def _lead(self, key: Hashable) -> bool:
        """With ``coalesce`` on: True when nothing of ``key`` is in flight, now marked so (the
        caller runs its plain call at once, then calls ``self._coalescer.end(key)`` in a
        ``finally``); False when the caller should wait with :meth:`_coalesce`. Without
        ``coalesce``: True, and nothing marked (the caller must not call ``end``)."""
        return not self.options.coalesce or self._coalescer.begin(key)

    async def _coalesce(self, key: Hashable, flush: Flush, item: Any) -> Any:
        """Send one per-job call now, or with the next batch of ``key`` when one is in flight
        (see :mod:`.coalesce`); return its own result (or raise its own error)."""
        self._check_open(key[0] if isinstance(key, tuple) else str(key))
        return await self._coalescer.submit(key, flush, item)

    async def _script(self, op: str, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run one script, translating errors and recording metrics (durable ops then WAIT).

        The hot path: the metrics and the error translation are inlined here (what
        ``metrics.timed()`` and ``translating()`` do, without two context managers per call).
        """
        self._check_open(op)
        conn, scripts = self._conn, self._scripts_set
        if conn is None or scripts is None:
            raise BackendClosedError(self.name, op, "backend is not open")
        metrics = self.metrics
        start = perf_counter()
        try:
            if self._durable_waits and op in DURABLE_OPS:
                reply = (await self._run_durable(op, [ScriptCall(name, keys, args)]))[0]
                if isinstance(reply, BaseException):
                    raise reply
                return reply
            if conn.lane is not None:
                return await scripts.run_lane(conn.lane, name, keys, args)
            return await scripts.run(conn.client, name, keys, args)
        except BaseException as exc:
            metrics.record("error")
            if isinstance(exc, REDIS_FAILURES):
                raise translate(self.name, op, exc) from exc
            raise
        finally:
            metrics.observe(perf_counter() - start)

    async def _transaction(self, op: str, commands: Sequence[tuple[Any, ...]]) -> list[Any] | None:
        """Run ``commands`` as one ``MULTI`` ... ``EXEC`` on the lane (see :mod:`.lane`): EXEC's
        replies, an error reply in its place as redis-py's exception instance; None when the
        client has no lane (a cluster, another pool). Never re-sent, and redis-py's errors are
        raised as they are: whether a transaction whose reply was lost ran is the caller's to
        find out.

        Raises:
            BackendClosedError: the backend is closed.
            redis.exceptions.RedisError: the transaction failed or its reply was lost.
        """
        self._check_open(op)
        conn = self._conn
        if conn is None:
            raise BackendClosedError(self.name, op, "backend is not open")
        if conn.lane is None:
            return None
        start = perf_counter()
        try:
            return await conn.lane.transaction(commands)
        except BaseException:
            self.metrics.record("error")
            raise
        finally:
            self.metrics.observe(perf_counter() - start)

    async def _scripts(self, op: str, calls: Sequence[ScriptCall]) -> list[Any]:
        """Run scripts pipelined, ``pipeline_size`` per round trip; errors per entry are raised.

        Raises:
            BackendError: the store failed, or an entry's script answered an error (the first).
        """
        for r in (out := await self._script_replies(op, calls)):
            if isinstance(r, BaseException):
                raise r
        return out

    async def _script_replies(self, op: str, calls: Sequence[ScriptCall]) -> list[Any]:
        """Run scripts pipelined, ``pipeline_size`` per round trip: one reply per call, an
        entry's error in its place as a translated :class:`~queuestore.errors.QueueStoreError`
        (the calls before and after it ran: what each did stands).

        Raises:
            BackendError: the store failed (no reply for the round trip).
        """
        self._check_open(op)
        out: list[Any] = []
        size = self.options.pipeline_size
        with self.metrics.timed(), translating(self.name, op):
            for i in range(0, len(calls), size):
                if self._durable_waits and op in DURABLE_OPS:
                    out.extend(await self._run_durable(op, calls[i : i + size]))
                else:
                    out.extend(await self.script_set.run_many(self.conn.client, calls[i : i + size]))
        for i, r in enumerate(out):
            if isinstance(r, BaseException):
                self.metrics.record("error")
                err = translate(self.name, op, r)
                err.__cause__ = r
                out[i] = err
        return out

    async def _run_durable(self, op: str, calls: Sequence[ScriptCall]) -> list[Any]:
        """The scripts, then the waits, on one connection (see :func:`.durability.run_durable`).

        Raises:
            OperationTimeoutError: the writes were applied but not confirmed in ``wait_timeout``.
            redis.exceptions.RedisError: the caller translates it.
        """
        waits, timeout = self._durable_waits, float(self.options.wait_timeout)
        return await run_durable(self.name, op, self.conn, self.script_set, waits, timeout, calls)

    async def _call(self, op: str, *args: Any, **kwargs: Any) -> Any:
        """Run one plain command, translating errors and recording metrics (inlined as in
        :meth:`_script`)."""
        self._check_open(op)
        conn = self._conn
        if conn is None:
            raise BackendClosedError(self.name, op, "backend is not open")
        metrics = self.metrics
        start = perf_counter()
        try:
            return await conn.client.execute_command(*args, **kwargs)
        except BaseException as exc:
            metrics.record("error")
            if isinstance(exc, REDIS_FAILURES):
                raise translate(self.name, op, exc) from exc
            raise
        finally:
            metrics.observe(perf_counter() - start)

    async def migration_record(
        self,
        op: RecordOp,
        *,
        owner: str = "",
        lease: float = 0.0,
        retention: float = 0.0,
        fields: Mapping[str, str] | None = None,
    ) -> RecordReply:
        """This queue's migration record (see :mod:`queuestore.backends._redis.record`).

        Raises:
            InvalidJobError: an unknown ``op``.
            BackendError: the store failed.
        """
        self._check_open("migration_record")
        return await run_record(self, op, owner=owner, lease=lease, retention=retention, fields=fields)

    # -- surfaces ---------------------------------------------------------------------
    def _base_capabilities(self, **flags: bool) -> BackendCapabilities:
        """Capabilities from the probe (persistence, clustering) plus the backend's own flags."""
        server = self.server
        return BackendCapabilities(
            persistence=bool(server.persistence),
            clustering=self.conn.cluster or server.cluster,
            transactions=True,
            **flags,
        )

    @property
    def cleanup_limit(self) -> float:
        """Seconds a call cancelled by its deadline may still spend undoing what it may have
        done (half of ``call_margin``); past it the server's own expiry (leases) does it."""
        return float(self.options.call_margin) / 2.0

    async def _within(self, op: str, wait: float, call: Callable[[], Awaitable[_T]], count: int = 1) -> _T:
        """Run ``call`` (a whole operation, its retries and reconnects included) so that it
        returns or raises within ``wait`` (the caller's timeout) + the server's time for
        ``count`` jobs when it asks for more than one (:data:`TAKE_TIME_PER_JOB` each) +
        ``call_margin`` seconds: it is cancelled after ``wait`` + that time + half the margin,
        which leaves the other half to hand back what a cancelled take may have leased (see
        :attr:`cleanup_limit`).

        Raises:
            OperationTimeoutError: no result in time (the outcome is unknown).
        """
        work = count * TAKE_TIME_PER_JOB if count > 1 else 0.0
        limit = wait + work + self.cleanup_limit
        with anyio.move_on_after(limit):
            return await call()
        self.metrics.record("error")
        spent = f"timeout {wait:g}s + {work:g}s for {count} jobs" if count > 1 else f"timeout {wait:g}s"
        raise OperationTimeoutError(
            self.name,
            op,
            f"no answer within {limit:g}s ({spent} + half the call_margin): the server is "
            "stalled or unreachable; the outcome is unknown (a job it leased is redelivered "
            "when its lease expires)",
        )

    async def health(self) -> HealthStatus:
        """A bounded PING to the node that owns the queue, then maxmemory-policy and
        persistence (see :func:`.health.backend_health`); never raises."""
        if self._closed or self._conn is None or self._server is None:
            return HealthStatus(status=HealthLevel.UNHEALTHY, message="backend is closed or not open")
        return await backend_health(
            self.name,
            self._conn,
            self._server,
            self.keys.key("health"),
            options=self.options,
            script_set=self.script_set,
            configured_type=self.config.type,
            waits=self._durable_waits,
        )

"""The redis-lists backend's options, meta record and reading side.

:class:`ListsCore` holds what the operations in
:mod:`queuestore.backends.redis_lists` and :mod:`queuestore.backends._lists_move`
build on: the key block of a queue, the per-job ``meta`` record the scripts keep
(msgpack, written by Lua with ``cmsgpack``; the body is never touched by Lua, so
any encoding and compression work), turning script replies into
:class:`~queuestore.Job` objects (garbage named, never raised), ``peek``,
``length``, ``stats`` and ``capabilities``. Reads by id and by page (``get_jobs``,
``iter``) are in :mod:`queuestore.backends._lists_lookup`.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.resources.abc import Traversable
from typing import Any, ClassVar

import msgspec

from queuestore._job import Job, JobState
from queuestore._models import BackendCapabilities, BackendStats
from queuestore.backends._redis.base import RedisBackendBase, RedisBackendOptions
from queuestore.backends._redis.keys import QueueKeys
from queuestore.backends._redis.scripts import ScriptCall, lua_folder
from queuestore.errors import (
    DuplicateJobError,
    InvalidJobError,
    JobNotFoundError,
    LeaseLostError,
    SerializationError,
)

__all__ = ["CORRUPT_PREFIX", "KEY_SUFFIXES", "ListsCore", "Meta", "RedisListsOptions", "key_block"]

#: the standard key block every lists script gets as KEYS[1..10], in this order
KEY_SUFFIXES = ("jobs", "meta", "ready", "delayed", "inflight", "dead", "ttl", "seq", "wake", "idem")
WAKE = KEY_SUFFIXES.index("wake")
STATE_CODE = {JobState.READY: "r", JobState.DELAYED: "d", JobState.IN_FLIGHT: "i", JobState.DEAD: "x"}
CODE_STATE = {v: k for k, v in STATE_CODE.items()}
SET_OF = {JobState.READY: 2, JobState.DELAYED: 3, JobState.IN_FLIGHT: 4, JobState.DEAD: 5}
GARBAGE_META = "corrupt or missing job metadata"
MISSING_BODY = "job body is missing"
#: ``Job.last_error`` of a job read from garbage (see :meth:`ListsCore.read_job`)
CORRUPT_PREFIX = "corrupt: "


class RedisListsOptions(RedisBackendOptions, kw_only=True, forbid_unknown_fields=True):
    """Options of the redis-lists backend: the common Redis options plus these.

    Attributes:
        batch_size: jobs (or ids) per script call in ``enqueue_many``, ``ack_many``,
            ``import_jobs`` and ``migration_release``; calls are pipelined
            ``pipeline_size`` per round trip.
        bury_limit: garbage entries (undecodable, or with a missing body) one dequeue
            may dead-letter before it returns, so garbage never blocks the queue.
    """

    batch_size: int = 100
    bury_limit: int = 16


class Meta(msgspec.Struct, kw_only=True):
    """A job's mutable state, as the scripts keep it (short names: it is stored per job)."""

    st: str = "r"  # r ready, d delayed, i in flight, x dead, h held (migration), m moving
    p: int = 0  # priority
    mr: int = 3  # max_retries
    rc: int = 0  # retry_count
    a: int = 0  # attempt
    q: int | None = None  # sequence number (FIFO within a priority; dead order)
    t: str | None = None  # lease token
    dl: float | None = None  # lease deadline
    sa: float | None = None  # started_at
    av: float | None = None  # available_at
    x: float | None = None  # expires_at
    le: str | None = None  # last_error
    dr: str | None = None  # dead_reason
    da: float | None = None  # dead_at
    o: str | None = None  # origin_queue
    hf: str | None = None  # state before held / moving
    mt: str | None = None  # move target


_META_ENC = msgspec.msgpack.Encoder()
_META_DEC = msgspec.msgpack.Decoder(Meta)


def key_block(keys: QueueKeys) -> list[str]:
    """The standard key block of a queue (``KEYS[1..10]`` of every lists script)."""
    return [keys.key(s) for s in KEY_SUFFIXES]


def meta_for(job: Job, state: str = "r") -> bytes:
    """The initial meta record of a job being stored."""
    return _META_ENC.encode(
        Meta(
            st=state,
            p=job.priority,
            mr=job.max_retries,
            rc=job.retry_count,
            a=job.attempt,
            sa=job.started_at,
            av=job.available_at,
            x=job.expires_at,
            le=job.last_error,
            dr=job.dead_reason,
            da=job.dead_at,
            o=job.origin_queue,
        )
    )


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class ListsCore(RedisBackendBase):
    """Shared machinery of :class:`~queuestore.backends.redis_lists.RedisListsBackend`."""

    lua_folder: ClassVar[Traversable] = lua_folder("queuestore.backends._redis").joinpath("lists")
    script_names: ClassVar[Sequence[str]] = (
        "enqueue",
        "dequeue",
        "ack",
        "nack",
        "extend",
        "move",
        "move_out",
        "move_in",
        "move_done",
        "hold",
        "release",
        "restore",
        "page",
        "stats",
        "lookup",
    )

    lists_options: RedisListsOptions

    _block: list[str] | None = None

    @property
    def block(self) -> list[str]:
        """This queue's key block (built once: it is passed on every script call; not to be mutated)."""
        block = self._block
        if block is None:
            block = self._block = key_block(self.keys)
        return block

    # -- reading -------------------------------------------------------------------------
    def read_job(self, job_id: str, body: bytes, raw_meta: bytes) -> tuple[Job, str | None]:
        """A Job from its stored body and meta; the second item names garbage (or is None).

        Garbage (meta or body missing or undecodable) is never passed off as a job: its
        ``last_error`` is ``"corrupt: <reason>"`` (:data:`CORRUPT_PREFIX`), and an
        undecodable body comes back as the raw bytes in ``payload``.
        """
        bad: str | None = None
        try:
            meta = _META_DEC.decode(raw_meta) if raw_meta else None
        except msgspec.DecodeError:
            meta = None
        if meta is None:
            meta, bad = Meta(st="x", dr=GARBAGE_META), GARBAGE_META
        if body:
            try:
                job = self.codec.decode(body)
            except SerializationError as exc:
                job, bad = Job(id=job_id, payload=bytes(body)), f"undecodable job body: {exc}"
        else:
            job, bad = Job(id=job_id), bad or MISSING_BODY
        code = meta.hf if meta.st in ("h", "m") and meta.hf else meta.st
        state = CODE_STATE.get(code, JobState.READY)
        job.id, job.queue, job.state = job_id, self.queue, state
        job.priority, job.max_retries, job.retry_count, job.attempt = meta.p, meta.mr, meta.rc, meta.a
        job.lease_token, job.lease_deadline = meta.t, meta.dl
        job.started_at, job.available_at, job.expires_at = meta.sa, meta.av, meta.x
        job.last_error, job.dead_reason, job.dead_at = meta.le, meta.dr, meta.da
        job.origin_queue = meta.o or (self.queue if state is JobState.DEAD else None)
        if state is not JobState.IN_FLIGHT:
            job.lease_token = job.lease_deadline = None
        if bad is not None:
            job.last_error = CORRUPT_PREFIX + bad
        return job, bad

    def read_triples(self, reply: Sequence[Any], start: int = 0) -> list[Job]:
        """Jobs from a flat ``id, body, meta, ...`` reply."""
        return [
            self.read_job(_text(reply[i]), reply[i + 1], reply[i + 2])[0] for i in range(start, len(reply), 3)
        ]

    # -- results -------------------------------------------------------------------------
    @staticmethod
    def check_code(code: int, job_id: str) -> None:
        """Raise the error a script's result code stands for (1 is success).

        Raises:
            JobNotFoundError, LeaseLostError, DuplicateJobError.
        """
        if code == 1:
            return
        if code == -1:
            raise LeaseLostError(job_id)
        if code == -2:
            raise JobNotFoundError(job_id, f"job {job_id!r} is not in flight")
        if code == -3:
            raise DuplicateJobError(job_id, f"job {job_id!r} is already stored in the target queue")
        if code == -4:
            raise JobNotFoundError(job_id, f"job {job_id!r} is being moved to another queue")
        raise JobNotFoundError(job_id)

    # -- inspection ------------------------------------------------------------------------
    async def _depths(self, op: str) -> list[int]:
        return [int(n) for n in await self._script(op, "stats", self.block, [])]

    async def length(self) -> int:
        """Jobs waiting: ready + delayed.

        Raises:
            BackendError: the store failed.
        """
        ready, delayed, _, _ = await self._depths("length")
        return ready + delayed

    async def peek(self, offset: int = 0) -> Job | None:
        """The ready job at ``offset`` in dequeue order (due delayed jobs promoted first).

        Raises:
            InvalidJobError: offset < 0.
            BackendError: the store failed.
        """
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidJobError("offset", f"must be an int >= 0, got {offset!r}")
        block, batch = self.block, self.options.reclaim_batch
        _, reply = await self._scripts(
            "peek",
            [
                ScriptCall("dequeue", block, [0, 1, batch, 0]),
                ScriptCall("page", [block[2], block[0], block[1]], ["offset", offset, "", 1, 0]),
            ],
        )
        if not reply:
            return None
        return self.read_job(reply[0].decode(), reply[2], reply[3])[0]

    def capabilities(self) -> BackendCapabilities:
        """Probed at open: persistence from the server, clustering from the connection."""
        return self._base_capabilities(
            atomic_ack=True,
            idempotent_enqueue=True,
            time_to_live=True,
            prioritization=True,
            batch_operations=True,
        )

    async def stats(self) -> BackendStats:
        """Depth per state (from the server), rates, error ratio and latencies (this
        instance's operations), and the real pool's active/idle connections.

        Raises:
            BackendError: the store failed.
        """
        ready, delayed, in_flight, dead = await self._depths("stats")
        m = self.metrics
        return BackendStats(
            backend=self.name,
            queue=self.queue,
            queue_depth=ready,
            delayed=delayed,
            in_flight=in_flight,
            dead=dead,
            total_enqueued=m.totals["enqueue"],
            total_dequeued=m.totals["dequeue"],
            total_acked=m.totals["ack"],
            total_nacked=m.totals["nack"],
            total_dead_lettered=m.totals["dead"],
            total_expired=m.totals["expired"],
            total_errors=m.totals["error"],
            connection_pool=self.conn.pool_stats(),
            **m.activity(),
        )

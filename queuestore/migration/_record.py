"""The migration record in the source's store: one owner, status from anywhere, the new home.

A run claims the record of its queue in the *source's* store before it changes
anything (``queuestore._record``: the claim is one atomic step with an owner lease
on the store's clock), renews the lease and writes its status there every
:data:`SYNC_INTERVAL` seconds, and gives the lease up when it ends. So:

* a second migration of the queue -- from another ``MigrationManager`` or another OS
  process -- finds a live owner and is refused (``MigrationInProgressError`` naming
  the owner and its migration id); once the owner's lease ran out (a crash, kill -9)
  the migration can be taken over: that is a resume, and it goes on from the counts
  the record holds;
* any process reads the status from the store (``read_status``);
* once writes must go to the target the record carries the queue's new ``home`` (a
  descriptor without secrets), which the source's storing scripts answer with.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
import msgspec

from queuestore._durations import to_seconds
from queuestore._models import BackendConfig
from queuestore._record import RecordReply
from queuestore.abc import MigrationSupport
from queuestore.errors import MigrationError, MigrationInProgressError, QueueStoreError
from queuestore.migration._home import HomeDescriptor, describe, owner_dead_here, owner_id
from queuestore.migration._models import MigrationOptions, MigrationPhase, MigrationStatus

__all__ = ["SYNC_INTERVAL", "RecordKeeper", "read_status", "rehome", "status_of"]

log = logging.getLogger("queuestore.migration")
#: seconds between two writes of the status (each renews the owner lease)
SYNC_INTERVAL = 0.25
_ENC = msgspec.json.Encoder(order="deterministic")
_STATUS = msgspec.json.Decoder(MigrationStatus)
#: phases after which the record no longer stands for a migration to resume
_SETTLED = frozenset({MigrationPhase.COMPLETED, MigrationPhase.ROLLED_BACK})


def status_of(reply: RecordReply) -> MigrationStatus | None:
    """The status a record holds (owner and home filled in from the record); None when empty."""
    raw = reply.fields.get("status")
    if not raw:
        return None
    try:
        status = _STATUS.decode(raw)
    except msgspec.DecodeError:
        return None
    owner = reply.fields.get("owner") or None
    status.owner = owner
    left = float(reply.fields.get("deadline", "0") or 0) - reply.now
    status.owner_lease_left = round(left, 3) if owner else None
    home = reply.fields.get("home")
    status.home = HomeDescriptor.decode(home).label() if home else None
    return status


async def read_status(source: MigrationSupport) -> MigrationStatus | None:
    """The status the record in ``source``'s store holds (None when there is none).

    Raises:
        BackendError: the store failed.
    """
    return status_of(await source.migration_record("read"))


class RecordKeeper:
    """A run's hold on the record of its queue in the source's store.

    Args:
        source: the source backend (its store keeps the record).
        queue: the queue.
        migration_id: the run's (deterministic) migration id.
        options: the run's options (owner lease, retention).
        target: the target's config (described in the record without secrets).
    """

    def __init__(
        self,
        source: MigrationSupport,
        queue: str,
        migration_id: str,
        options: MigrationOptions,
        target: BackendConfig,
    ) -> None:
        self.source, self.queue, self.migration_id = source, queue, migration_id
        self.owner = owner_id()
        self.lease = to_float(options.owner_lease)
        self.retention = to_float(options.record_retention)
        self.target = describe(target)
        self.held = False

    def _fields(self, status: MigrationStatus) -> dict[str, str]:
        body = msgspec.structs.replace(status, owner=None, owner_lease_left=None, home=None)
        return {
            "mid": self.migration_id,
            "phase": str(status.phase),
            "target": self.target.encode(),
            "status": _ENC.encode(body).decode(),
        }

    async def claim(self, status: MigrationStatus) -> MigrationStatus | None:
        """Take the owner lease (waiting out the lease of an owner of this host that no longer
        runs); return the status an earlier run of this migration left in the record, to carry
        its counts on, if any. ``status`` is written only when the record was of another
        migration or none; otherwise the caller writes it (:meth:`sync`) once it carried the
        earlier counts on, so that a reader never sees the progress go back.

        Raises:
            MigrationInProgressError: another owner holds a live lease (named, with its migration id).
            MigrationError: in phase validation: the record is of another, unfinished migration.
            BackendError: the store failed.
        """
        before = await self.source.migration_record("read")
        earlier = status_of(before)
        other = before.fields.get("mid", "")
        holder = before.fields.get("owner", "")
        live = holder and float(before.fields.get("deadline", "0") or 0) > before.now
        foreign = other and other != self.migration_id and not live
        if foreign and earlier is not None and earlier.phase not in _SETTLED:
            raise MigrationError(
                "validation",
                f"queue {self.queue!r} has an unfinished migration {other} "
                f"({earlier.phase}) to another target: resume or roll it back first",
            )
        fields = {"mid": self.migration_id, "target": self.target.encode()}
        if other != self.migration_id:
            fields.update(self._fields(status))
        reply = await self.source.migration_record("claim", owner=self.owner, lease=self.lease, fields=fields)
        gone = reply.fields.get("owner", "")
        if not reply.granted and owner_dead_here(gone):
            left = float(reply.fields.get("deadline", "0") or 0) - reply.now
            log.warning(
                "migration %s of %s: owner %s is no longer running; taking over when its lease "
                "runs out (%.1fs)", self.migration_id, self.queue, gone, left,
            )  # fmt: skip
            await anyio.sleep(min(max(left, 0.0), self.lease) + 0.05)
            reply = await self.source.migration_record(
                "claim", owner=self.owner, lease=self.lease, fields=fields
            )
        if not reply.granted:
            raise _in_progress(self.queue, reply)
        self.held = True
        if holder and holder != self.owner:
            log.warning(
                "migration %s of %s: took over from %s, whose owner lease had run out",
                self.migration_id, self.queue, holder,
            )  # fmt: skip
        if earlier is not None and other == self.migration_id and earlier.phase not in _SETTLED:
            return earlier  # a run after a completion or a rollback starts its counts afresh
        return None

    async def seal(self, status: MigrationStatus) -> None:
        """From now on writes go to the target: record it as the queue's ``home``, which the
        source's storing scripts answer with (and other processes follow).

        Raises:
            MigrationError: the lease was lost.
            BackendError: the store failed.
        """
        await self.sync(status, home=self.target.encode())

    async def unseal(self, status: MigrationStatus) -> None:
        """Writes go to the source again (a rollback): drop the ``home``.

        Raises:
            MigrationError: the lease was lost.
            BackendError: the store failed.
        """
        await self.sync(status, home="")

    async def sync(self, status: MigrationStatus, **extra: str) -> None:
        """Write ``status`` (and ``extra`` fields) and renew the lease.

        Raises:
            MigrationError: the lease was lost (another process took the migration over).
            BackendError: the store failed.
        """
        reply = await self.source.migration_record(
            "update", owner=self.owner, lease=self.lease, fields={**self._fields(status), **extra}
        )
        if not reply.granted:
            self.held = False
            holder = reply.fields.get("owner") or "nobody"
            raise MigrationError(
                str(status.phase), f"lost the migration record of {self.queue!r} to {holder}"
            )

    async def release(self, status: MigrationStatus, **extra: str) -> bool:
        """Write the final ``status`` and give the lease up; a completed or rolled-back run's
        record then expires after the retention. Returns False when the lease was lost.

        Raises:
            BackendError: the store failed.
        """
        if not self.held:
            return False
        keep = self.retention if status.phase in _SETTLED else 0.0
        reply = await self.source.migration_record(
            "release", owner=self.owner, retention=keep, fields={**self._fields(status), **extra}
        )
        self.held = False
        return reply.granted

    async def run_owned(self, body: Callable[[], Awaitable[None]], status: MigrationStatus) -> None:
        """Run ``body`` while writing ``status`` (the live object) to the record every
        :data:`SYNC_INTERVAL` seconds, which renews the lease. When the lease is lost,
        ``body`` is cancelled and the loss raised.

        Raises:
            MigrationError: the lease was lost; or what ``body`` raises.
        """
        lost: list[MigrationError] = []
        failure: Exception | None = None
        main = anyio.CancelScope()

        async def keep() -> None:
            while True:
                try:
                    await self.sync(status)
                except MigrationError as exc:
                    lost.append(exc)
                    main.cancel()
                    return
                except QueueStoreError as exc:  # the lease outlives a few failed writes
                    log.warning("migration %s: writing its record failed: %s", self.queue, exc)
                await anyio.sleep(SYNC_INTERVAL)

        async with anyio.create_task_group() as tg:
            tg.start_soon(keep)
            with main:
                try:
                    await body()
                except Exception as exc:  # raised once the keeper stopped
                    failure = exc
            tg.cancel_scope.cancel()
        if lost:
            raise lost[0]
        if failure is not None:
            raise failure

    async def release_shielded(self, status: MigrationStatus, limit: float) -> None:
        """:meth:`release`, shielded from cancellation and bounded by ``limit`` seconds; a
        failure is logged (the lease then runs out by itself)."""
        with anyio.move_on_after(limit, shield=True):
            try:
                await self.release(status)
            except QueueStoreError as exc:
                log.warning("migration %s: releasing its record failed: %s", self.queue, exc)


async def rehome(store: MigrationSupport, queue: str, home: HomeDescriptor | None, owner: str) -> None:
    """Set (or, with None, drop) the ``home`` of ``queue`` in another store's record -- the
    target of a migration that was a source once, or of a rollback -- when nobody owns it.

    Raises:
        MigrationInProgressError: a migration of that store's queue is running (named).
        BackendError: the store failed.
    """
    fields = {"home": home.encode() if home is not None else ""}
    reply = await store.migration_record("claim", owner=owner, lease=10.0, fields=fields)
    if not reply.granted:
        raise _in_progress(queue, reply)
    await store.migration_record("release", owner=owner, fields={})


def to_float(value: object) -> float:
    """A duration option as seconds (checked by ``MigrationOptions.check``)."""
    return to_seconds(value, "duration")


def _in_progress(queue: str, reply: RecordReply) -> MigrationInProgressError:
    f = reply.fields
    left = float(f.get("deadline", "0") or 0) - reply.now
    return MigrationInProgressError(
        f.get("phase", "validation"),
        f"queue {queue!r} is already migrating: migration {f.get('mid', '?')} is owned by "
        f"{f.get('owner', '?')} (its lease has {left:.1f}s left; it can be taken over once it runs out)",
    )

"""The hold / write / release move, its ledger of checksums, and verification.

One batch moves like this -- and a crash between any two steps loses and
duplicates nothing:

1. ``source.migration_hold(mid, state, n)``: one atomic step takes up to ``n``
   jobs out of the queue into the holding area of migration ``mid`` (on the source).
2. ``target.import_jobs(jobs)``: writes them in the state they carry, idempotently
   by id (an id already stored is a no-op), keeping order within a priority. Each
   id the target had already is looked up (``get_jobs``) and compared by content
   digest: identical, it is *skipped* (a resumed batch, or the same job enqueued on
   both sides); otherwise it is a *conflict*.
3. ``source.migration_release(mid, ids)``: drops the written and skipped jobs from
   the holding area. Conflicting jobs are never released: they are put back on the
   source (``migration_restore``) and the run stops with a MigrationError naming
   their ids -- neither copy is overwritten or lost.

A crash after 1 or 2 leaves the jobs held; the next run first finishes what
``migration_held`` shows (import again -- a no-op where it had arrived -- then
release). A rollback puts held jobs back with ``migration_restore``.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence

import msgspec

from queuestore._job import Job, JobState, validate_job
from queuestore.abc import MigrationSupport, QueueBackend
from queuestore.errors import InvalidJobError, MigrationError

__all__ = [
    "MOVABLE",
    "Ledger",
    "StepHook",
    "content_digest",
    "finish_held",
    "job_checksum",
    "move_batch",
    "spi",
]


def spi(backend: QueueBackend) -> MigrationSupport:
    """``backend`` as a migration endpoint.

    Raises:
        MigrationError: in phase "validation", the backend cannot take part in a migration.
    """
    if not isinstance(backend, MigrationSupport):
        raise MigrationError(
            "validation", f"backend {backend.name!r} ({type(backend).__name__}) does not support migration"
        )
    return backend


#: the states the protocol moves (in-flight jobs stay with their lease on the source)
MOVABLE = (JobState.READY, JobState.DELAYED, JobState.DEAD)
#: ``await hook(step, batch_number)`` after "held", "imported" and "released" (tests use it)
StepHook = Callable[[str, int], Awaitable[None]]
_ENC = msgspec.msgpack.Encoder(order="deterministic")


def _ms(value: float | None) -> int | None:
    return None if value is None else round(value * 1000)


def content_digest(job: Job) -> bytes:
    """A stable hash of what a job *is*: id, type, payload, priority, created_at,
    metadata, tags, max_retries and expires_at (ms), independent of where it is."""
    fields = [job.id, job.type, job.payload, job.priority, job.created_at, job.metadata]
    fields += [job.tags, job.max_retries, _ms(job.expires_at)]
    return hashlib.blake2b(_ENC.encode(fields), digest_size=16).digest()


def job_checksum(job: Job) -> str:
    """The content digest plus where the job waits (state, available_at in ms), as hex."""
    place = _ENC.encode([str(job.state), _ms(job.available_at)])
    return hashlib.blake2b(content_digest(job) + place, digest_size=16).hexdigest()


class Ledger:
    """What left the source in this run: id -> (content digest, state, due ms), and
    an order-independent aggregate checksum (XOR of the per-job checksums)."""

    def __init__(self) -> None:
        self.moved: dict[str, tuple[bytes, JobState, int | None]] = {}
        self.by_state: Counter[str] = Counter()
        self.corrupt = 0
        self.skipped = 0
        self.written = 0
        self._xor = 0

    def record(self, jobs: Iterable[Job]) -> int:
        """Remember jobs that were written to the target (a re-record is a no-op).

        Returns:
            How many were new to the ledger.
        """
        new = 0
        for job in jobs:
            if job.id in self.moved:
                continue
            new += 1
            self.moved[job.id] = (content_digest(job), JobState(job.state), _ms(job.available_at))
            self.by_state[str(job.state)] += 1
            self._xor ^= int(job_checksum(job), 16)
        return new

    def __len__(self) -> int:
        return len(self.moved)

    @property
    def checksum(self) -> str:
        """The aggregate checksum (hex) of every recorded job."""
        return f"{self._xor:032x}"


#: Job.last_error prefix with which a backend marks a held entry it could not decode
CORRUPT_MARK = "corrupt:"


def _problem(job: Job) -> str | None:
    if isinstance(job.last_error, str) and job.last_error.startswith(CORRUPT_MARK):
        return f"corrupt entry {job.id!r}: {job.last_error[len(CORRUPT_MARK) :].strip()}"
    try:
        validate_job(job)
        return None
    except InvalidJobError as exc:
        return f"corrupt entry {job.id!r}: {exc}"


def _placeholder(job: Job, reason: str) -> Job:
    """The dead job a corrupt entry becomes with on_corrupt="dead_letter" (its repr kept)."""
    return Job(
        id=str(job.id)[:256] or "corrupt",
        metadata={"corrupt_reason": reason[:500], "original": repr(job)[:2000]},
        max_retries=0,
        state=JobState.DEAD,
        dead_reason=reason[:500],
        dead_at=time.time(),
    )


async def move_batch(
    source: QueueBackend,
    target: QueueBackend,
    migration_id: str,
    jobs: Sequence[Job],
    ledger: Ledger,
    *,
    on_corrupt: str = "fail",
    hook: StepHook | None = None,
    batch_no: int = 0,
    restore: bool = True,
    resumed: bool = False,
) -> int:
    """Steps 2 and 3 for jobs that are held already. Returns how many were written
    (also counted in ``ledger.written``). An id the target holds already, identical, is
    counted in ``ledger.skipped`` -- or as written when ``resumed`` (finishing what an
    earlier attempt of the same migration held: that attempt wrote it).

    Raises:
        MigrationError: a corrupt job and ``on_corrupt`` is "fail" (it stays held); an id
            the target holds with other content (named; put back on the source when
            ``restore``, else left held).
        BackendError: the target or the source failed (the jobs stay held).
    """
    if hook is not None:
        await hook("held", batch_no)
    problems = {job.id: p for job in jobs if (p := _problem(job)) is not None}
    if problems and on_corrupt != "dead_letter":  # move the sound ones, keep the corrupt ones held
        sound = [j for j in jobs if j.id not in problems]
        also = ""
        try:
            if sound:
                await move_batch(
                    source, target, migration_id, sound, ledger, batch_no=batch_no, restore=False,
                    resumed=resumed,
                )  # fmt: skip
        except MigrationError as exc:  # conflicts stay held with the corrupt entries
            also = f"; also {exc.message}"
        first = next(iter(problems.values()))
        raise MigrationError(
            "copying",
            f"{len(problems)} corrupt entries, first {first} (kept held by migration {migration_id}: "
            f"repair them, roll back, or resume with on_corrupt='dead_letter'){also}",
        )
    out = [_placeholder(j, problems[j.id]) if j.id in problems else j for j in jobs]
    stored = await spi(target).import_jobs(out)
    present = [j for j, new in zip(out, stored, strict=True) if not new]
    conflicts = await _conflicts(target, present)
    written = [j for j, new in zip(out, stored, strict=True) if new and j.id not in problems]
    identical = [j for j in present if j.id not in conflicts and j.id not in problems]
    if resumed:  # written by an earlier attempt of this migration
        written += identical
    else:
        ledger.skipped += len(identical)
    fresh = ledger.record(written)  # a batch finished again in the same run counts once
    ledger.record(j for j in out if j.id in problems and j.id not in conflicts)
    ledger.written += fresh
    ledger.corrupt += len(problems)
    if hook is not None:
        await hook("imported", batch_no)
    await spi(source).migration_release(migration_id, [j.id for j in jobs if j.id not in conflicts])
    if hook is not None:
        await hook("released", batch_no)
    if conflicts:
        if restore:  # the conflicting jobs (and anything still held) go back where they were
            await spi(source).migration_restore(migration_id)
        shown = ", ".join(repr(i) for i in conflicts[:20])
        more = f" and {len(conflicts) - 20} more" if len(conflicts) > 20 else ""
        raise MigrationError(
            "copying",
            f"{len(conflicts)} ids are stored in {target.name!r} already with other content: {shown}{more} "
            f"(each kept where it was on both sides; remove or rename one copy, then resume)",
        )
    return fresh


async def _conflicts(target: QueueBackend, present: Sequence[Job]) -> list[str]:
    """The ids of ``present`` (refused by the target's import) whose stored copy differs
    in content, or is gone again (it cannot be compared: treated as a conflict)."""
    if not present:
        return []
    there = await spi(target).get_jobs([j.id for j in present])
    return [
        j.id
        for j, t in zip(present, there, strict=True)
        if t is None or content_digest(t) != content_digest(j)
    ]


async def finish_held(
    source: QueueBackend,
    target: QueueBackend,
    migration_id: str,
    batch_size: int,
    ledger: Ledger,
    *,
    on_corrupt: str = "fail",
) -> int:
    """Finish what the holding area holds (after a crash, a cancel or a failure).

    Raises:
        MigrationError, BackendError: as :func:`move_batch`.
    """
    total = 0
    while held := await spi(source).migration_held(migration_id, batch_size):
        total += await move_batch(
            source, target, migration_id, held, ledger, on_corrupt=on_corrupt, resumed=True
        )
    return total

"""Job-by-job accounting of a fault run: what every call reported, and whether the store agrees.

Each producer and consumer writes what its calls returned into a :class:`Ledger`; a second OS
process writes its own and hands it over as JSON (:meth:`Ledger.to_json` / :meth:`Ledger.merge`).
At the end :func:`account` compares the ledger with the store, job by job:

* **lost**: a job whose enqueue returned is gone without an ack that landed, or is in a state its
  history does not allow (dead-lettered though nobody dead-lettered it, still in flight though no
  lease could have been orphaned);
* **duplicated**: a job acked twice, delivered more often than it was given back, or found twice
  at rest by the final drain;
* **wrong outcomes**: an enqueue that returned False for a fresh id, an ack / nack that raised
  ``JobNotFoundError`` / ``LeaseLostError`` while this holder's lease was valid (leases are long,
  so only a lost reply can make that happen), an ack that returned but whose job is still stored,
  and a job delivered that nobody enqueued (garbage must never come out as a job).

Leases are far longer than a run, so no lease expires while its holder works: a redelivery
happens only after a nack that requeued (or whose outcome is unknown).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from queuestore import (
    BackendClosedError,
    BackendUnavailableError,
    ConnectionFailedError,
    Job,
    JobState,
    OperationTimeoutError,
    OutcomeUnknownError,
)

__all__ = ["ACTIONS", "CONNECTION_FAULTS", "Accounting", "JobRecord", "Ledger", "account"]

#: what a consumer does with a delivered job
ACTIONS = ("ack", "requeue", "dead")
#: errors a fault on the connection or the server's process explains (a lost, late or refused
#: connection, a server loading or gone); any other error is the server refusing the call
CONNECTION_FAULTS = (
    BackendClosedError,
    BackendUnavailableError,
    ConnectionFailedError,
    OperationTimeoutError,
    OutcomeUnknownError,
)


@dataclass
class JobRecord:
    """What the callers saw of one job."""

    #: "yes": an enqueue call said stored (or said "already stored" after an unknown outcome);
    #: "maybe": every enqueue call of it ended with an unknown outcome
    stored: str = "maybe"
    #: a producer was about to enqueue it (set before the call, so a consumer may see it first)
    announced: bool = False
    deliveries: int = 0
    acks_ok: int = 0
    #: nacks with requeue that returned or whose outcome stayed unknown
    requeues: int = 0
    #: attempt -> [action, outcome]; outcome is "ok" or "unknown"
    settled: dict[int, list[str]] = field(default_factory=dict)

    def last(self) -> tuple[str, str] | None:
        """The action and outcome of the latest delivery (by attempt), if any was settled."""
        if not self.settled:
            return None
        action, outcome = self.settled[max(self.settled)]
        return action, outcome


@dataclass
class Ledger:
    """The record of one process's calls in one run."""

    jobs: dict[str, JobRecord] = field(default_factory=dict)
    wrong: list[str] = field(default_factory=list)
    #: dequeue calls that ended unknown or were cancelled: each may have orphaned a lease
    orphan_risk: int = 0
    calls: int = 0
    unknown: int = 0
    cancelled: int = 0
    #: calls the server refused (an error reply, not a lost or late one): the first few, by text
    refused: list[str] = field(default_factory=list)

    def failed(self, exc: Exception) -> None:
        """A call raised ``exc`` (a :class:`QueueStoreError`): its outcome is unknown, and a
        refusal by the server (not a connection's fault) is noted too."""
        self.unknown += 1
        if not isinstance(exc, CONNECTION_FAULTS) and len(self.refused) < 20:
            self.refused.append(f"{type(exc).__name__}: {exc}"[:300])

    def record(self, job_id: str) -> JobRecord:
        return self.jobs.setdefault(job_id, JobRecord())

    def announce(self, job_id: str) -> None:
        """A producer is about to enqueue ``job_id``."""
        self.record(job_id).announced = True

    def enqueued(self, job_id: str, result: bool | None, after_unknown: bool) -> None:
        """An enqueue ended: ``result`` None means every try was unknown."""
        rec = self.record(job_id)
        if result is True or (result is False and after_unknown):
            rec.stored = "yes"
        elif result is False:
            rec.stored = "yes"  # it is stored, but this call said someone else stored it
            self.wrong.append(f"enqueue {job_id}: returned False for a fresh id")

    def delivered(self, job: Job) -> None:
        self.record(job.id).deliveries += 1

    def settled(self, job: Job, action: str, outcome: str) -> None:
        rec = self.record(job.id)
        rec.settled[job.attempt] = [action, outcome]
        if action == "ack" and outcome == "ok":
            rec.acks_ok += 1
        if action == "requeue":
            rec.requeues += 1

    def to_json(self) -> str:
        return json.dumps(
            {
                "jobs": {k: asdict(v) for k, v in self.jobs.items()},
                "wrong": self.wrong,
                "orphan_risk": self.orphan_risk,
                "calls": self.calls,
                "unknown": self.unknown,
                "cancelled": self.cancelled,
                "refused": self.refused,
            }
        )

    def merge(self, text: str) -> None:
        """Add another process's ledger (from :meth:`to_json`)."""
        data: dict[str, Any] = json.loads(text)
        for job_id, raw in data["jobs"].items():
            other = JobRecord(**{**raw, "settled": {int(k): v for k, v in raw["settled"].items()}})
            mine = self.jobs.get(job_id)
            if mine is None:
                self.jobs[job_id] = other
                continue
            mine.stored = "yes" if "yes" in (mine.stored, other.stored) else "maybe"
            mine.announced = mine.announced or other.announced
            mine.deliveries += other.deliveries
            mine.acks_ok += other.acks_ok
            mine.requeues += other.requeues
            mine.settled.update(other.settled)
        self.wrong += data["wrong"]
        self.orphan_risk += data["orphan_risk"]
        self.calls += data["calls"]
        self.unknown += data["unknown"]
        self.cancelled += data["cancelled"]
        self.refused += data["refused"]


@dataclass
class Accounting:
    """The verdict of one run."""

    jobs: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    end_states: Counter[str] = field(default_factory=Counter)

    def problems(self) -> list[str]:
        return [*self.lost, *self.duplicated, *self.wrong]


_ALLOWED: dict[str, set[str | None]] = {
    # the state a job may be in, given the last thing done to it with a definite outcome
    "ack": {None},
    "requeue": {JobState.READY, JobState.DELAYED},
    "dead": {JobState.DEAD},
}


def account(ledger: Ledger, states: dict[str, Job | None], drained: Counter[str]) -> Accounting:
    """Compare the ledger with the store.

    Args:
        ledger: every process's calls, merged.
        states: ``get_jobs`` of every id in the ledger, read after the load and the faults stopped.
        drained: how often each id came out of the final drain of the ready jobs.
    """
    out = Accounting(wrong=list(ledger.wrong))
    for job_id, rec in sorted(ledger.jobs.items()):
        stored = states.get(job_id)
        state = None if stored is None else stored.state
        if not rec.announced:
            out.wrong.append(f"{job_id}: delivered {rec.deliveries}x, but no producer enqueued it")
            continue
        out.end_states[str(state) if state is not None else "acked"] += 1
        if rec.stored == "yes":
            out.jobs += 1
        if rec.acks_ok > 1:
            out.duplicated.append(f"{job_id}: acked {rec.acks_ok} times")
        if rec.deliveries > 1 + rec.requeues:
            out.duplicated.append(
                f"{job_id}: delivered {rec.deliveries} times, given back {rec.requeues} times"
            )
        if drained[job_id] > 1:
            out.duplicated.append(f"{job_id}: {drained[job_id]} copies at rest")
        if state == JobState.READY and drained[job_id] == 0:
            out.lost.append(f"{job_id}: ready by id, but the drain never got it")
        if rec.stored == "maybe":
            continue  # its enqueue may not have landed: any end is consistent
        last = rec.last()
        if last is None:
            allowed: set[str | None] = {JobState.READY, JobState.DELAYED}
            if ledger.orphan_risk:
                allowed.add(JobState.IN_FLIGHT)
        elif last[1] == "unknown":
            allowed = {JobState.IN_FLIGHT, *_ALLOWED[last[0]]}
        else:
            allowed = set(_ALLOWED[last[0]])
            if last[0] == "requeue" and ledger.orphan_risk:
                allowed.add(JobState.IN_FLIGHT)  # redelivered to a lease nobody saw
        if state not in allowed:
            where = "gone (acked)" if state is None else str(state)
            did = "nothing settled" if last is None else f"last {last[0]} ({last[1]})"
            if last is not None and last == ("ack", "ok"):
                out.wrong.append(f"{job_id}: ack returned, but the job is {where}")
            else:
                out.lost.append(f"{job_id}: {where} after {did}")
    for job_id, n in drained.items():
        if job_id not in ledger.jobs or not ledger.jobs[job_id].announced:
            out.wrong.append(f"the drain got {job_id!r} ({n}x), which no producer enqueued")
    return out

"""Random sequences of enqueue / dequeue / ack / nack / extend / move / time passing keep every
job in exactly the state a reference model says, job by job."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from queuestore import DequeueOptions, IterOptions, Job, JobState, QueueBackend

from .harness import HARNESSES, Harness
from .model import MJob, Model, outcome

VISIBILITY = 2.5  # units
IDEM_WINDOW = 5.5
STATES = (JobState.READY, JobState.DELAYED, JobState.IN_FLIGHT, JobState.DEAD)

index = st.integers(0, 10_000)
enqueue = st.tuples(
    st.just("enqueue"),
    st.integers(0, 9),  # priority
    st.sampled_from([None, None, 1.5, 3.5]),  # delay
    st.sampled_from([None, None, 2.5, 6.5]),  # ttl
    st.integers(0, 2),  # max_retries
    st.sampled_from([None, None, None, "k1", "k2"]),  # idempotency key
)
STEPS = {
    "enqueue": enqueue,
    "dequeue": st.tuples(st.just("dequeue")),
    "enqueue_again": st.tuples(st.just("enqueue_again"), index),
    "ack": st.tuples(st.just("ack"), index, st.booleans()),
    "nack": st.tuples(st.just("nack"), index, st.booleans(), st.booleans(), st.sampled_from([0.0, 1.5])),
    "extend": st.tuples(st.just("extend"), index, st.booleans(), st.sampled_from([1.5, 4.5])),
    "move": st.tuples(st.just("move"), index, st.booleans()),
    "advance": st.tuples(st.just("advance"), st.integers(1, 4)),
}
# enqueue and dequeue are drawn more often, so that there are leases to act on
WEIGHTS = {
    "enqueue": 4,
    "dequeue": 4,
    "ack": 2,
    "nack": 2,
    "advance": 3,
    "extend": 2,
    "move": 1,
    "enqueue_again": 1,
}
ops = st.sampled_from([k for k, w in WEIGHTS.items() for _ in range(w)]).flatmap(lambda kind: STEPS[kind])


async def walk(backend: QueueBackend) -> dict[JobState, list[Job]]:
    found: dict[JobState, list[Job]] = {}
    for state in STATES:
        found[state] = [j async for j in backend.iter(IterOptions(states=(state,), count=3))]
    return found


async def check(model: Model, source: QueueBackend, target: QueueBackend) -> None:
    found = await walk(source)
    all_ids = [j.id for jobs in found.values() for j in jobs]
    assert len(all_ids) == len(set(all_ids)), "a job is stored twice"
    for state in STATES:
        want = model.in_state(state)
        got = found[state]
        assert [j.id for j in got] == [m.id for m in want], f"{state} differs"
        for j, m in zip(got, want, strict=True):
            assert (j.retry_count, j.attempt) == (m.retry_count, m.attempt), f"counters of {j.id}"
    moved = {j.id async for j in target.iter(IterOptions(count=5))}
    assert moved == set(model.moved)
    waiting = sum(1 for m in model.jobs.values() if m.state in (JobState.READY, JobState.DELAYED))
    assert await source.length() == waiting


async def run(harness: Harness, steps: list[tuple[Any, ...]]) -> None:
    unit = harness.unit
    options = {"visibility_timeout": VISIBILITY * unit, "idempotency_window": IDEM_WINDOW * unit}
    source = await harness.make("source", **options)
    target = await harness.make("target", **options)
    model = Model(now=harness.now() / unit, visibility=VISIBILITY, idem_window=IDEM_WINDOW)
    known: list[str] = []
    leases: list[Job] = []

    def pick_lease(i: int, by_id: bool) -> tuple[Job | str, str, str | None]:
        if not leases:
            return "never-dequeued", "never-dequeued", None
        job = leases[-1 - (i % len(leases))]  # shrinks towards the latest lease
        return (job.id if by_id else job), job.id, (None if by_id else job.lease_token)

    for step in steps:
        kind = step[0]
        if kind == "enqueue":
            _, priority, delay, ttl, max_retries, key = step
            now = harness.now()
            job = Job(
                payload={"n": len(known)},
                priority=priority,
                max_retries=max_retries,
                available_at=None if delay is None else now + delay * unit,
                expires_at=None if ttl is None else now + ttl * unit,
                idempotency_key=key,
            )
            m = MJob(job.id, priority, max_retries, None if ttl is None else model.now + ttl)
            m.available_at = None if delay is None else model.now + delay
            expected = model.enqueue(m, key)
            assert await source.enqueue(job) is expected
            if expected:
                known.append(job.id)
        elif kind == "enqueue_again" and known:
            job_id = known[step[1] % len(known)]
            expected = model.enqueue(MJob(job_id, 0, 3, None), None)
            assert await source.enqueue(Job(id=job_id, payload="again")) is expected
        elif kind == "dequeue":
            want = model.dequeue()
            got = await source.dequeue(DequeueOptions(timeout=0))
            assert (got.id if got else None) == (want.id if want else None)
            if got is not None and want is not None:
                want.token = got.lease_token
                leases.append(got)
        elif kind in ("ack", "nack", "extend", "move"):
            ref, job_id, token = pick_lease(step[1], step[2])
            if kind == "move" and step[2] and known:  # by id: any known job, in any state
                ref = job_id = known[step[1] % len(known)]
                token = None
            expected_exc: BaseException | None = None
            try:
                if kind == "ack":
                    model.ack(job_id, token)
                elif kind == "nack":
                    model.nack(job_id, token, step[3], step[4])
                elif kind == "extend":
                    model.extend(job_id, token, step[3])
                else:
                    model.move(job_id, token)
            except Exception as exc:
                expected_exc = exc
            actual_exc: BaseException | None = None
            try:
                if kind == "ack":
                    await source.ack(ref)
                elif kind == "nack":
                    await source.nack(ref, requeue=step[3], delay=step[4] * unit, error="nacked")
                elif kind == "extend":
                    await source.extend_lease(ref, step[3] * unit)
                else:
                    await source.move(ref, "target")
            except Exception as exc:
                actual_exc = exc
            assert outcome(actual_exc) == outcome(expected_exc), f"{step}: {actual_exc!r} vs {expected_exc!r}"
            event(f"{kind}: {type(actual_exc).__name__ if actual_exc else 'ok'}")
        elif kind == "advance":
            model.advance(step[1])
            await harness.advance(step[1])
        await check(model, source, target)


@pytest.mark.parametrize("harness_name", sorted(HARNESSES))
@settings(
    max_examples=150,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no slow "explain" phase
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(ops, min_size=10, max_size=60))
def test_random_operations_conserve_every_job(harness_name: str, steps: list[tuple[Any, ...]]) -> None:
    async def scenario() -> None:
        harness = HARNESSES[harness_name]()
        try:
            await run(harness, steps)
        finally:
            await harness.aclose()

    anyio.run(scenario)

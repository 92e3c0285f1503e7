"""The client's readings of a take's entries and of an ack's lease tokens give what the general
readings give (the shortcuts for the common case change no outcome)."""

from __future__ import annotations

from typing import Any

import pytest

from queuestore import InvalidJobError, Job, JobState
from queuestore._codec import JobCodec
from queuestore.backends.redis_streams.layout import SEP, LeaseToken, enqueued_entry_job, entry_job, job_args
from queuestore.backends.redis_streams.settle import ack_args, ack_ref, take_ack_args

GROUP = "workers"


def _flat(job: Job, codec: JobCodec, retries: bytes, attempts: bytes) -> list[bytes]:
    """An entry's fields as enqueue writes them (``j b r m a x``), as a reply carries them."""
    body = next(a for a in job_args(codec, "q", job) if isinstance(a, bytes))
    return [b"j", job.id.encode(), b"b", body, b"r", retries, b"m", b"3", b"a", attempts, b"x", b"0"]


#: a body with the defaults, and one holding other values of the fields the reading overrides
_BODIES = [
    {},
    {"available_at": 1.5, "dead_reason": "x", "dead_at": 2.5, "retry_count": 7, "attempt": 9},
    {"available_at": 1.5},
    {"dead_reason": "x"},
    {"dead_at": 2.5},
]
_BODY_IDS = ["defaults", "overridden", "available_at", "dead_reason", "dead_at"]


@pytest.mark.parametrize("retries", [b"0", b"1", b"9", b"10", b"123", b"07", b" 2"])
@pytest.mark.parametrize("deliveries", [1, 2, 5])
@pytest.mark.parametrize("held", _BODIES, ids=_BODY_IDS)
def test_an_entry_read_at_its_places_is_the_job_entry_job_reads(
    retries: bytes, deliveries: int, held: dict[str, Any]
) -> None:
    codec = JobCodec()
    job = Job(payload={"n": 1}, type="t", priority=3, metadata={"k": "v"}, **held)
    raw = _flat(job, codec, retries, b"4")
    fast = enqueued_entry_job(codec, raw, deliveries)
    assert fast is not None
    fast.queue = "q"
    fields = dict(zip([k.decode() for k in raw[::2]], raw[1::2], strict=True))
    assert fast == entry_job(codec, "q", fields, JobState.IN_FLIGHT, deliveries)
    assert fast.retry_count == int(retries) + deliveries - 1
    assert fast.attempt == 4 + deliveries
    assert fast.state is JobState.IN_FLIGHT
    assert fast.available_at is fast.dead_reason is fast.dead_at is None


@pytest.mark.parametrize("bad", [b"", b"x", b"1.5", b"-"])
def test_an_entry_with_unreadable_counters_is_left_to_the_general_reading(bad: bytes) -> None:
    codec = JobCodec()
    assert enqueued_entry_job(codec, _flat(Job(payload=1), codec, bad, b"0"), 1) is None
    assert enqueued_entry_job(codec, _flat(Job(payload=1), codec, b"0", bad), 1) is None


def _token(eid: str, deliveries: str = "1", consumer: str = "@c1:w") -> str:
    return SEP.join([GROUP, consumer, eid, deliveries])


@pytest.mark.parametrize(
    ("job_id", "token"),
    [
        ("a" * 32, _token("1764604925123-0")),
        ("a" * 32, _token("1764604925123-7", "2")),
        ("a" * 32, _token("1764604925123-7", "02")),
        ("caf\u00e9", _token("1764604925123-1")),
        ("id", _token("1764604925123-1", consumer="w\u00e9")),
    ],
)
def test_an_ack_reads_a_token_as_lease_token_decode_does(job_id: str, token: str) -> None:
    t = LeaseToken.decode(token)
    ref = ack_ref(GROUP, Job(id=job_id, payload=1, lease_token=token))
    assert ref == (job_id, t.group, t.consumer, t.entry_id, str(t.deliveries))


@pytest.mark.parametrize(
    "job",
    [
        Job(id="a", payload=1, lease_token=SEP.join([GROUP, "c", "1-0"])),  # three fields
        Job(id="a", payload=1, lease_token=_token("1-0", "one")),
        Job(id="a", payload=1, lease_token=_token("1-0", "\u0661")),  # a non-ASCII digit
        Job(id="a\ud800", payload=1, lease_token=_token("1-0")),  # a lone surrogate
        Job(id="a", payload=1, lease_token=_token("1-0", consumer="c\ud800")),
        Job(id="", payload=1, lease_token=_token("1-0")),
    ],
)
def test_an_ack_refuses_what_is_not_a_lease_token_of_ours(job: Job) -> None:
    with pytest.raises(InvalidJobError):
        ack_ref(GROUP, job)


def test_a_bare_id_acks_its_current_lease() -> None:
    assert ack_ref(GROUP, "job-1") == ("job-1", GROUP, "", "", "")


def _take(n: int) -> list[Job]:
    return [Job(id=f"id{i}", payload=i, lease_token=_token(f"1764604925123-{i}")) for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 100])
def test_the_ack_of_one_take_reads_its_tokens_as_ack_ref_does(n: int) -> None:
    jobs = _take(n)
    assert take_ack_args(jobs) == ack_args([ack_ref(GROUP, job) for job in jobs])


@pytest.mark.parametrize(
    "odd",
    [
        "job-1",  # a bare id
        Job(id="x", payload=1),  # no token
        Job(id="x", payload=1, lease_token=_token("1764604925123-9", "2")),
        Job(id="x", payload=1, lease_token=_token("1764604925123-9", consumer="@c2:w")),
        Job(id="caf\u00e9", payload=1, lease_token=_token("1764604925123-9")),
        Job(id="", payload=1, lease_token=_token("1764604925123-9")),
        Job(id="x", payload=1, lease_token=SEP.join([GROUP, "@c1:w", "1"])),  # the head and the tail overlap
        Job(id="x", payload=1, lease_token=_token(f"1764604925123-9{SEP}x")),  # five fields
        Job(id="x", payload=1, lease_token=_token("1764604925123-\u0669")),
    ],
)
@pytest.mark.parametrize("at", [0, 1])
def test_a_batch_that_is_not_one_takes_first_deliveries_is_read_job_by_job(odd: Job | str, at: int) -> None:
    jobs: list[Job | str] = list(_take(2))
    jobs.insert(at, odd)
    assert take_ack_args(jobs) is None

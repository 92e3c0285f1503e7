"""The Job model, its validation and its wire encoding (JobCodec)."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from queuestore import (
    PRIORITY_MAX,
    PRIORITY_MIN,
    InvalidJobError,
    Job,
    JobCodec,
    JobState,
    SerializationError,
)
from queuestore._job import validate_job

FULL = Job(
    type="email",
    queue="emails",
    payload={"to": "a@b.c", "n": [1, 2.5, None, True], "nested": {"k": "v"}},
    priority=7,
    started_at=10.0,
    retry_count=1,
    max_retries=4,
    metadata={"tenant": "t1"},
    tags=["x", "y"],
    attempt=2,
    lease_token="tok",
    lease_deadline=99.5,
    available_at=50.0,
    expires_at=500.0,
    idempotency_key="order-1",
    last_error="boom",
    dead_reason="poison",
    dead_at=77.0,
    origin_queue="src",
    state=JobState.DEAD,
)


def test_defaults_generate_an_id_and_a_creation_time() -> None:
    a, b = Job(), Job()
    assert a.id != b.id
    assert len(a.id) == 32
    assert int(a.id, 16) >= 0
    assert abs(a.created_at - time.time()) < 5
    assert (a.priority, a.max_retries, a.retry_count, a.attempt, a.state) == (0, 3, 0, 0, JobState.READY)
    assert (PRIORITY_MIN, PRIORITY_MAX) == (0, 9)


def test_delayed_and_with_ttl_return_copies() -> None:
    job = Job(payload=1)
    later = job.delayed(timedelta(seconds=30))
    short = job.with_ttl(5)
    assert job.available_at is None
    assert job.expires_at is None
    assert later.id == job.id
    assert later.available_at is not None
    assert 25 < later.available_at - time.time() <= 30
    assert short.expires_at is not None
    assert 0 < short.expires_at - time.time() <= 5


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
@pytest.mark.parametrize("compression", [False, True])
def test_round_trip_keeps_every_field(fmt: Any, compression: bool) -> None:
    codec = JobCodec(fmt, compression=compression, compression_threshold=16)
    data = codec.encode(FULL)
    assert codec.decode(data) == FULL
    if compression:
        assert data.startswith(b"\x00qz1")


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_compressed_and_plain_bodies_decode_side_by_side(fmt: Any) -> None:
    plain, packed = JobCodec(fmt), JobCodec(fmt, compression=True, compression_threshold=512)
    big = Job(payload={"text": "lorem ipsum " * 200})
    small = Job(payload=1)
    big_packed = packed.encode(big)
    assert big_packed.startswith(b"\x00qz1")
    assert len(big_packed) < len(plain.encode(big))
    assert not packed.encode(small).startswith(b"\x00qz1")  # under the threshold
    for codec in (plain, packed):
        assert codec.decode(big_packed) == big
        assert codec.decode(plain.encode(big)) == big
        assert codec.decode(memoryview(packed.encode(small))) == small


def test_json_decodes_from_str_and_msgpack_keeps_bytes() -> None:
    as_json = JobCodec("json")
    job = Job(payload={"a": 1})
    assert as_json.decode(as_json.encode(job).decode()) == job
    binary = Job(payload=b"\x00\x01")
    assert JobCodec().decode(JobCodec().encode(binary)).payload == b"\x00\x01"


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
@pytest.mark.parametrize("payload", [object(), {"c": 1j}, [lambda: 1], {"e": ValueError("x")}])
def test_unencodable_payload_is_an_invalid_job(fmt: Any, payload: object) -> None:
    with pytest.raises(InvalidJobError) as info:
        JobCodec(fmt).encode(Job(payload=payload))
    assert info.value.field == "payload"
    assert info.value.code == "INVALID_JOB"


def test_msgpack_refuses_integers_past_64_bits() -> None:
    with pytest.raises(InvalidJobError) as info:
        JobCodec("msgpack").encode(Job(payload={"big": 2**70}))
    assert info.value.field == "payload"
    assert JobCodec("json").decode(JobCodec("json").encode(Job(payload=2**70))).payload == 2**70


@pytest.mark.parametrize(
    "data",
    [b"", b"\xc1", b"not a job", b"\x00qz1garbage", b'{"id": 3}', b"[1,2]"],
)
@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_undecodable_data_is_a_serialization_error(fmt: Any, data: bytes) -> None:
    with pytest.raises(SerializationError):
        JobCodec(fmt).decode(data)


def test_unknown_format_is_named() -> None:
    with pytest.raises(InvalidJobError) as info:
        JobCodec("xml")  # type: ignore[arg-type]
    assert info.value.field == "format"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": ""}, "id"),
        ({"id": "x" * 257}, "id"),
        ({"id": 5}, "id"),
        ({"priority": 10}, "priority"),
        ({"priority": -1}, "priority"),
        ({"priority": True}, "priority"),
        ({"priority": "5"}, "priority"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"retry_count": -2}, "retry_count"),
        ({"available_at": float("nan")}, "available_at"),
        ({"expires_at": float("inf")}, "expires_at"),
        ({"created_at": float("-inf")}, "created_at"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_validation_names_each_field(changes: dict[str, Any], field: str) -> None:
    job = Job(payload=1)
    for name, value in changes.items():
        setattr(job, name, value)
    with pytest.raises(InvalidJobError) as info:
        validate_job(job)
    assert info.value.field == field
    assert field in str(info.value)


def test_validation_accepts_the_edges() -> None:
    for priority in (PRIORITY_MIN, PRIORITY_MAX):
        validate_job(Job(payload=1, priority=priority, max_retries=0, id="x" * 256))
    with pytest.raises(InvalidJobError) as info:
        validate_job({"payload": 1})  # type: ignore[arg-type]
    assert info.value.field == "job"

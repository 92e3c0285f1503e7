"""The error tree: stable codes, retryable / permanent, constructors, password redaction."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import queuestore
from queuestore import errors
from queuestore._models import BackendConfig
from queuestore._redact import redact
from queuestore.errors import (
    ERROR_CODES,
    AuthenticationFailedError,
    BackendClosedError,
    BackendError,
    BackendNotFoundError,
    BackendUnavailableError,
    ConfigurationError,
    ConnectionFailedError,
    DuplicateJobError,
    InvalidJobError,
    JobNotFoundError,
    LeaseLostError,
    MigrationError,
    MigrationInProgressError,
    OperationTimeoutError,
    OutcomeUnknownError,
    PermissionDeniedError,
    QueueStoreError,
    TLSFailedError,
    error_code,
    is_permanent,
    is_retryable,
)

CLASSES = sorted(
    (cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, QueueStoreError)),
    key=lambda cls: cls.__name__,
)

# constructor arguments per class (everything else takes a message)
ARGS: dict[str, tuple[Any, ...]] = {
    "ConfigurationError": ("options.url", "bad"),
    "InvalidJobError": ("payload", "bad"),
    "JobNotFoundError": ("job-1",),
    "DuplicateJobError": ("job-1",),
    "LeaseLostError": ("job-1",),
    "MigrationError": ("copying", "bad"),
    "MigrationInProgressError": ("draining", "busy"),
}


def make(cls: type[QueueStoreError]) -> QueueStoreError:
    if issubclass(cls, BackendError):
        return cls("main", "enqueue", "boom")
    return cls(*ARGS.get(cls.__name__, ("something happened",)))


def test_there_are_twenty_three_stable_codes() -> None:
    assert len(ERROR_CODES) == 23
    assert all(code.isupper() and " " not in code for code in ERROR_CODES)


def test_every_code_is_reachable_from_a_class_and_every_class_has_a_code() -> None:
    reached = {cls.code for cls in CLASSES}
    assert reached == ERROR_CODES, f"codes without a class: {ERROR_CODES - reached}"
    exported = set(queuestore.__all__)
    assert {cls.__name__ for cls in CLASSES} <= exported, "every error class is exported"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_each_class_builds_and_reports_its_code(cls: type[QueueStoreError]) -> None:
    err = make(cls)
    assert error_code(err) == cls.code
    assert isinstance(err, QueueStoreError)
    assert not (is_retryable(err) and is_permanent(err)), "retryable and permanent are exclusive"
    assert str(err)


def test_foreign_errors_are_unknown_and_neither_retryable_nor_permanent() -> None:
    for err in (ValueError("x"), KeyError("k"), OSError("os")):
        assert error_code(err) == "UNKNOWN"
        assert not is_retryable(err)
        assert not is_permanent(err)


def test_retryable_and_permanent_classification() -> None:
    retryable = [
        ConnectionFailedError,
        OperationTimeoutError,
        OutcomeUnknownError,
        BackendUnavailableError,
        MigrationInProgressError,
    ]
    permanent = [
        ConfigurationError,
        InvalidJobError,
        BackendClosedError,
        JobNotFoundError,
        DuplicateJobError,
        AuthenticationFailedError,
        PermissionDeniedError,
        TLSFailedError,
    ]
    for cls in retryable:
        assert is_retryable(make(cls)), cls.__name__
        assert not is_permanent(make(cls)), cls.__name__
    for cls in permanent:
        assert is_permanent(make(cls)), cls.__name__
        assert not is_retryable(make(cls)), cls.__name__
    lost = make(LeaseLostError)  # neither: the job is fine, this holder lets it go
    assert not is_retryable(lost)
    assert not is_permanent(lost)


def test_constructors_keep_their_fields() -> None:
    cause = OSError("refused")
    err = ConnectionFailedError("main", "connect", cause)
    assert (err.backend, err.operation, err.err) == ("main", "connect", cause)
    assert "main" in str(err)
    assert "connect" in str(err)
    assert "refused" in str(err)
    cfg = ConfigurationError("url", "must not be empty").with_prefix("backends.main")
    assert cfg.field == "backends.main.url"
    assert str(cfg).startswith("backends.main.url: ")
    assert InvalidJobError("priority", "too high").field == "priority"
    missing = JobNotFoundError("job-9")
    assert missing.job_id == "job-9"
    assert str(missing) == "job 'job-9' not found"  # KeyError subclasses print plainly
    assert str(BackendNotFoundError("no backend 'x'")) == "no backend 'x'"
    assert MigrationError("verifying", "counts differ").phase == "verifying"
    assert isinstance(ConfigurationError("a", "b"), ValueError)
    assert isinstance(missing, KeyError)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("redis://user:s3cret@host:6379/0", "s3cret"),
        ("rediss://:hunter2@cache.internal:6380", "hunter2"),
        ("connect failed: password=p@ss, retry", "p@ss"),
        ("{'password': 'letmein'}", "letmein"),
        ("AUTH: token=tok-42", "tok-42"),
    ],
)
def test_redact_hides_passwords(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert "***" in out


def test_messages_never_carry_passwords() -> None:
    url = "redis://admin:topsecret@10.0.0.1:6379/0"
    errs = [
        ConnectionFailedError("main", "connect", f"cannot reach {url}"),
        ConfigurationError("url", f"bad url {url}"),
        MigrationError("copying", f"target {url} failed"),
        QueueStoreError(f"plain {url}"),
    ]
    for err in errs:
        assert "topsecret" not in str(err)
        assert "topsecret" not in err.message
    config = BackendConfig(type="redis-lists", url=url, options={"password": "pw-in-options"})
    assert "topsecret" not in repr(config)
    assert "pw-in-options" not in repr(config)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("requirepass s3cret-1", "s3cret-1"),
        ("masterauth s3cret-2", "s3cret-2"),
        ("ERR AUTH s3cret-3 failed", "s3cret-3"),
        ("AUTH alice s3cret-4", "s3cret-4"),
    ],
)
def test_redact_hides_redis_command_passwords(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert "***" in out


def test_the_bare_root_error_does_not_claim_a_backend_is_unavailable() -> None:
    err = QueueStoreError("x")
    assert err.code == "INTERNAL_ERROR"
    assert error_code(err) == "INTERNAL_ERROR"
    assert not is_retryable(err)

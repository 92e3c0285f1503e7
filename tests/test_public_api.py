"""The public surface: ``queuestore.__all__`` is sorted, importable, public, and what DESIGN.md names.

To export a new name: add it to ``queuestore/__init__.py`` (keeping ``__all__`` in
ruff's RUF022 order) and to ``DESIGN_NAMES`` (if DESIGN.md names it) or ``ALSO_EXPORTED``.
A name DESIGN.md promises that does not exist yet goes in ``PENDING`` until it lands.
"""

from __future__ import annotations

import importlib

import queuestore
from queuestore import errors

# Every top-level name DESIGN.md ("The API, in Python") uses as ``qs.<name>`` or names as API.
DESIGN_NAMES = frozenset(
    {
        # models and the backend contract
        "Job",
        "DequeueOptions",
        "IterOptions",
        "BackendConfig",
        "BackendCapabilities",
        "BackendStats",
        "HealthStatus",
        "QueueBackend",
        # registry, manager, config
        "default_registry",
        "BackendRegistry",
        "BackendManager",
        "load_config_from_file",
        # migration
        "MigrationManager",
        "MigrationTool",
        "MigrationOptions",
        "MigrationStatus",
        "MigrationPlan",
        # errors and their classification
        "QueueStoreError",
        "BackendError",
        "ConfigurationError",
        "MigrationError",
        "LeaseLostError",
        "error_code",
        "is_retryable",
        "is_permanent",
    }
)

# DESIGN.md names that do not exist yet: remove a name from here when it lands.
PENDING: frozenset[str] = frozenset()

# Exported names DESIGN.md does not spell out (every error class is also allowed).
ALSO_EXPORTED = frozenset(
    {
        "__version__",
        "ALL",
        "AllJobs",
        "PRIORITY_MAX",
        "PRIORITY_MIN",
        "BackendFactory",
        "ConnectionPoolStats",
        "DefaultsConfig",
        "HealthLevel",
        "JobCodec",
        "JobRef",
        "JobState",
        "MigrationSupport",
        "MigrationPhase",
        "QueueConfig",
        "StorageConfig",
        "load_config",
    }
)

ERROR_NAMES = frozenset(name for name in errors.__all__ if name[0].isupper() and name != "ERROR_CODES")


def ruf022_key(name: str) -> tuple[int, str]:
    """Ruff's isort-style order: SCREAMING_CASE, then CamelCase, then everything else."""
    if name.isupper() and len(name) > 1:
        return 0, name
    if name[:1].isupper():
        return 1, name
    return 2, name


def test_all_is_sorted_and_unique() -> None:
    names = list(queuestore.__all__)
    assert names == sorted(names, key=ruf022_key)
    assert len(names) == len(set(names))


def test_every_name_is_importable() -> None:
    module = importlib.import_module("queuestore")
    for name in queuestore.__all__:
        assert getattr(module, name, None) is not None, f"queuestore.{name} is in __all__ but missing"


def test_no_private_names() -> None:
    private = [
        n for n in queuestore.__all__ if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))
    ]
    assert private == []


def test_design_names_are_exported() -> None:
    exported = set(queuestore.__all__)
    missing = DESIGN_NAMES - exported
    assert missing == PENDING, (
        f"DESIGN.md names not exported: {sorted(missing - PENDING)}; "
        f"landed but still listed as PENDING: {sorted(PENDING - missing)}"
    )


def test_nothing_is_exported_by_accident() -> None:
    allowed = DESIGN_NAMES | ALSO_EXPORTED | ERROR_NAMES
    unexpected = set(queuestore.__all__) - allowed
    assert unexpected == set(), f"add to DESIGN_NAMES or ALSO_EXPORTED in this test: {sorted(unexpected)}"


def test_every_error_class_is_exported_from_the_top() -> None:
    assert set(ERROR_NAMES) <= set(queuestore.__all__)


def test_outcome_unknown_error_is_exported_retryable_with_its_code() -> None:
    err = queuestore.OutcomeUnknownError("main", "ack", "reply lost")
    assert isinstance(err, queuestore.BackendError)
    assert queuestore.error_code(err) == "OUTCOME_UNKNOWN"
    assert queuestore.is_retryable(err)
    assert not queuestore.is_permanent(err)

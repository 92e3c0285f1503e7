"""Fixtures of the manager tests: a local registry with memory and the fault-injecting type."""

from __future__ import annotations

import uuid

import pytest

import queuestore as qs
from queuestore.backends.memory import MemoryBackendFactory
from tests.manager.faulty import FaultyFactory


@pytest.fixture
def faulty() -> FaultyFactory:
    return FaultyFactory()


@pytest.fixture
def registry(faulty: FaultyFactory) -> qs.BackendRegistry:
    reg = qs.BackendRegistry()
    reg.register("memory", MemoryBackendFactory())
    reg.register("faulty", faulty)
    return reg


@pytest.fixture
def ns() -> str:
    """A unique memory namespace / backend name (memory namespaces are process-wide)."""
    return f"t-{uuid.uuid4().hex[:10]}"

"""BackendRegistry and default_registry()."""

from __future__ import annotations

import subprocess
import sys

import pytest

import queuestore as qs
from queuestore.backends.memory import MemoryBackendFactory

pytestmark = pytest.mark.anyio
BUILTINS = ["dragonfly", "keydb", "memory", "redis-lists", "redis-streams"]


def test_default_registry_holds_the_builtins() -> None:
    registry = qs.default_registry()
    assert registry is qs.default_registry()
    assert registry.list() == BUILTINS
    assert all(t in registry for t in BUILTINS)
    assert "nope" not in registry
    assert qs.BackendRegistry().list() == []
    assert qs.BackendRegistry(builtins=True).list() == BUILTINS


def test_importing_queuestore_imports_no_backend() -> None:
    code = (
        "import sys, queuestore as qs; r = qs.default_registry(); r.list(); "
        "print(sorted(m for m in sys.modules if m.startswith('queuestore.backends.') or m == 'redis'))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_register_refuses_duplicates_unless_replace() -> None:
    registry = qs.BackendRegistry(builtins=True)
    factory = MemoryBackendFactory()
    registry.register("custom", factory)
    with pytest.raises(qs.BackendExistsError) as info:
        registry.register("custom", MemoryBackendFactory())
    assert qs.error_code(info.value) == "BACKEND_EXISTS"
    with pytest.raises(qs.BackendExistsError):
        registry.register("redis-lists", MemoryBackendFactory())  # a lazy built-in counts
    replacement = MemoryBackendFactory()
    registry.register("custom", replacement, replace=True)
    assert registry.factory("custom") is replacement
    assert registry.list() == sorted([*BUILTINS, "custom"])
    registry.unregister("custom")
    with pytest.raises(qs.BackendNotFoundError):
        registry.unregister("custom")
    with pytest.raises(TypeError):
        registry.register("x", object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        registry.register("", factory)


def test_missing_module_is_an_error_only_when_used() -> None:
    registry = qs.BackendRegistry()
    registry.register_lazy("ghost", "queuestore.backends.no_such_module:GhostFactory")
    assert registry.list() == ["ghost"]  # listing does not import
    assert not registry.is_loadable("ghost")
    assert not registry.is_loadable("unregistered")
    with pytest.raises(qs.BackendNotFoundError) as info:
        registry.factory("ghost")
    assert "not available" in str(info.value)
    assert "queuestore.backends.no_such_module" in str(info.value)
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    with pytest.raises(TypeError):
        registry.register_lazy("bad", "no-colon")


async def test_create_and_validate() -> None:
    registry = qs.default_registry()
    assert registry.is_loadable("memory")
    registry.validate("memory", qs.BackendConfig(type="memory"))
    with pytest.raises(qs.ConfigurationError) as info:
        registry.validate("memory", qs.BackendConfig(type="memory", database=-1))
    assert info.value.field == "database"
    with pytest.raises(qs.ConfigurationError) as info:
        registry.validate("memory", qs.BackendConfig(type="redis-lists"))
    assert info.value.field == "type"
    async with await registry.create("memory", qs.BackendConfig(type="memory", queue="reg-q")) as backend:
        assert backend.queue == "reg-q"
        assert await backend.enqueue(qs.Job(payload=1))
    assert backend.closed
    with pytest.raises(qs.BackendNotFoundError) as nf:
        await registry.create("nope", qs.BackendConfig(type="nope"))
    assert qs.error_code(nf.value) == "BACKEND_NOT_FOUND"


@pytest.mark.parametrize(
    "backend_type",
    [
        "redis-lists",
        "redis-streams",
        "keydb",
        "dragonfly",
    ],
)
def test_redis_factories_load(backend_type: str) -> None:
    registry = qs.default_registry()
    assert registry.is_loadable(backend_type)
    assert isinstance(registry.factory(backend_type), qs.BackendFactory)

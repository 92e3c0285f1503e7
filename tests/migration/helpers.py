"""Helpers of the migration tests: managers over memory or real servers, and job accounting."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from queuestore import BackendConfig, BackendManager, Job, JobState, QueueBackend, QueueConfig, StorageConfig
from queuestore._models import IterOptions
from queuestore.backends.memory import unique_namespace

ALL_STATES = (JobState.READY, JobState.DELAYED, JobState.IN_FLIGHT, JobState.DEAD)


def unique(stem: str = "q") -> str:
    return f"{stem}-{uuid.uuid4().hex[:10]}"


def memory_config(queue: str = "q", **extra: BackendConfig) -> StorageConfig:
    """Two memory backends on different namespaces: ``src`` (serving ``queue``) and ``dst``."""
    backends = {
        "src": BackendConfig(type="memory", name="src", options={"namespace": unique_namespace("src")}),
        "dst": BackendConfig(type="memory", name="dst", options={"namespace": unique_namespace("dst")}),
        **extra,
    }
    return StorageConfig(backends=backends, queues={queue: QueueConfig(backend="src")})


def redis_backend(
    type_: str, url: str, prefix: str, cluster: list[str] | None = None, **opts: Any
) -> BackendConfig:
    return BackendConfig(
        type=type_,
        name=f"{type_}-{prefix.rstrip(':')}",
        url=url,
        cluster_mode=bool(cluster),
        cluster_addrs=list(cluster or []),
        options={"key_prefix": prefix, **opts},
    )


def two_backend_config(queue: str, src: BackendConfig, dst: BackendConfig) -> StorageConfig:
    src.name, dst.name = "src", "dst"
    return StorageConfig(backends={"src": src, "dst": dst}, queues={queue: QueueConfig(backend="src")})


async def manager_for(config: StorageConfig) -> BackendManager:
    return await BackendManager.from_config(config)


async def stored_ids(backend: QueueBackend) -> Counter[str]:
    """Every id stored in ``backend`` (any state), counted -- a count of 2 is a duplicate."""
    return Counter([j.id async for j in backend.iter(IterOptions(count=1000, states=ALL_STATES))])


async def stored_jobs(backend: QueueBackend) -> dict[str, Job]:
    return {j.id: j async for j in backend.iter(IterOptions(count=1000, states=ALL_STATES))}


async def open_plain(manager: BackendManager, name: str, queue: str) -> QueueBackend:
    """A fresh backend of the named config for ``queue`` (to inspect a side directly)."""
    assert manager.config is not None
    cfg = manager.config.get_backend_config(name)
    cfg.queue = queue
    return await manager.open_backend(cfg)


def write_yaml(path: Path, config: StorageConfig) -> Path:
    """``config`` (Redis-family backends with a url and options, queues) as a YAML file."""
    lines = ["backends:"]
    for name, b in config.backends.items():
        lines += [f"  {name}:", f"    type: {b.type}", f"    url: {b.url}"]
        if b.options:
            lines.append(f"    options: {json.dumps(b.options)}")
    lines.append("queues:")
    lines += [f"  {q}: {{backend: {c.backend}}}" for q, c in config.queues.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path

"""Shared by the plumbing tests: backends of one kind made on a given server, closed at the end."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from queuestore import BackendConfig, default_registry
from queuestore.backends._redis.base import RedisBackendBase

#: ``await make(type_, **options)``: a Redis backend on a fresh queue (options over the defaults)
Make = Callable[..., Awaitable[RedisBackendBase]]


@contextlib.asynccontextmanager
async def backend_maker(url: str, label: str, **defaults: Any) -> AsyncIterator[Make]:
    """A :data:`Make` for backends on ``url`` named ``<type>-<label>``, each with ``defaults`` as
    its options (a call's own options win); every backend it made is closed on exit."""
    made: list[RedisBackendBase] = []

    async def create(type_: str, **options: Any) -> RedisBackendBase:
        cfg = BackendConfig(
            type=type_,
            name=f"{type_}-{label}",
            url=url,
            queue=f"q-{uuid.uuid4().hex[:8]}",
            options={**defaults, **options},
        )
        backend = await default_registry().create(type_, cfg)
        assert isinstance(backend, RedisBackendBase)
        made.append(backend)
        return backend

    try:
        yield create
    finally:
        for backend in made:
            await backend.aclose()

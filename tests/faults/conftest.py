"""Fixtures of the fault tests: a :class:`~.proxy.FaultProxy` in front of the session's real
server, the layout under test (redis-lists and redis-streams: ``layout``, with its hooks from
:mod:`.layouts`), and backends of that layout that talk through the proxy (or straight to the
server)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from queuestore import BackendConfig

from .layouts import LAYOUTS, Layout
from .proxy import FaultProxy

Maker = Callable[..., Awaitable[Any]]


@pytest.fixture
async def proxy(redis_server: Any) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(redis_server.host, redis_server.port) as p:
        yield p


@pytest.fixture(params=sorted(LAYOUTS))
def layout(request: pytest.FixtureRequest) -> Layout:
    """The layout under test (a test of one layout only: ``parametrize("layout", [...],
    indirect=True)``)."""
    return LAYOUTS[request.param]


@pytest.fixture
async def backends(redis_server: Any, proxy: FaultProxy, layout: Layout) -> AsyncIterator[Maker]:
    """``await backends(via_proxy=True, queue="q", **options)``: a backend of the layout under
    test on a key prefix of its own per test; through the proxy it has a short ``read_timeout``
    so a swallowed reply is retried fast."""
    made: list[Any] = []
    prefix = f"qs-flt-{uuid.uuid4().hex[:8]}:"

    async def make(via_proxy: bool = True, queue: str = "q", **options: Any) -> Any:
        opts: dict[str, Any] = {"key_prefix": prefix, "strict_keys": True}
        if via_proxy:
            opts["read_timeout"] = opts["write_timeout"] = 0.25
        opts.update(options)
        cfg = BackendConfig(
            type=layout.type,
            name="faults",
            url=proxy.url if via_proxy else redis_server.url,
            queue=queue,
            options=opts,
        )
        backend = await layout.factory().create(cfg)
        made.append(backend)
        return backend

    try:
        yield make
    finally:
        for b in made:
            await b.aclose()


async def pair(backends: Maker, **options: Any) -> tuple[Any, Any]:
    """A backend through the proxy and one straight to the server, on the same queue."""
    return await backends(**options), await backends(via_proxy=False, **options)

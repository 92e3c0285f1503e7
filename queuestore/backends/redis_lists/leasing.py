"""Dequeue of the redis-lists backend: lease now, else wait on the wake-up list and lease again.

The lease script never blocks. With a timeout, the consumer blocks outside Lua with
``BLPOP`` on the queue's wake-up list, finite (``min(block_timeout, time left, next
due time)``), then runs the lease script again. Scripts that make jobs ready push
wake-up tokens; a lost reply is a lease that expires and is reclaimed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio

from queuestore._job import Job
from queuestore._models import DequeueOptions
from queuestore.backends._redis.blocking import wait_list
from queuestore.backends._redis.errors import translating
from queuestore.backends.redis_lists.batches import Leased, give_back, lease
from queuestore.backends.redis_lists.context import ListsContext
from queuestore.backends.redis_lists.layout import WAKE

__all__ = ["LeaseStep", "LeaseWaits", "Share", "lease_each", "take_share"]

#: ``await step(visibility)``: one non-blocking lease attempt
LeaseStep = Callable[[float], Awaitable[Leased]]

_INF = float("inf")


class LeaseWaits:
    """The lease-and-wait loop of one backend's consumers, and their blocking waits (all
    cancelled when the backend closes, so no blocking call outlives its client)."""

    __slots__ = ("_ctx", "_scopes")

    def __init__(self, ctx: ListsContext) -> None:
        self._ctx = ctx
        self._scopes: set[anyio.CancelScope] = set()

    def cancel(self) -> None:
        """Wake every blocked consumer (its dequeue then raises what the closed backend raises)."""
        for scope in list(self._scopes):
            scope.cancel()

    async def take(self, op: str, options: DequeueOptions | None, step: LeaseStep) -> list[Job]:
        """Run ``step`` until it leases jobs or ``options.timeout`` passes (0: one attempt).

        Raises:
            InvalidJobError: bad options (negative timeout...).
            BackendError: the store failed.
        """
        default_lease = float(self._ctx.options.visibility_timeout)
        if options is None:  # the defaults, without building and converting them per call
            timeout, visibility = 0.0, default_lease
        else:
            t = options.timeout
            timeout = t if type(t) is float and 0.0 <= t < _INF else options.timeout_seconds()
            visibility = options.lease_seconds(default_lease)
        deadline = time.monotonic() + timeout
        while True:
            jobs, next_due, buried = await step(visibility)
            if jobs:
                return jobs
            if buried:
                continue  # garbage was cleared out of the way: look again at once
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            wait = min(float(self._ctx.options.block_timeout), remaining)
            if next_due is not None:
                wait = min(wait, next_due + 0.005)
            await self._wait(op, max(wait, 0.01))

    async def _wait(self, op: str, seconds: float) -> None:
        """Block on the wake-up list for up to ``seconds`` (cancelled by :meth:`cancel`)."""
        ctx = self._ctx
        with anyio.CancelScope() as scope, translating(ctx.name, op):
            self._scopes.add(scope)
            try:
                await wait_list(ctx.connection(), ctx.block[WAKE], seconds)
            finally:
                self._scopes.discard(scope)


class Share:
    """One coalesced ``dequeue`` call's place in a shared lease call: the flush fills
    ``leased``; the caller sets ``cancelled`` when it is cancelled before it got it."""

    __slots__ = ("cancelled", "leased", "visibility")

    def __init__(self, visibility: float) -> None:
        self.visibility = visibility
        self.leased: Leased | None = None
        self.cancelled = False


async def take_share(ctx: ListsContext, share: Share, shared: Callable[[Share], Awaitable[Leased]]) -> Leased:
    """A coalesced caller's part: ``await shared(share)``; cancelled after the shared call
    leased its job, it hands that job back (the flush does it when the caller was cancelled
    first)."""
    try:
        return await shared(share)
    except anyio.get_cancelled_exc_class():
        share.cancelled = True
        if share.leased is not None and share.leased.jobs:
            await give_back(ctx, jobs=share.leased.jobs)
        raise


async def lease_each(ctx: ListsContext, shares: list[Share]) -> list[Leased]:
    """Coalesced ``dequeue`` calls of one lease length: ``batch_size`` per script, a job each
    while there are jobs; the others get none (and wait as they would). The jobs of callers
    cancelled meanwhile are handed back.

    Raises:
        BackendError: the store failed.
    """
    count = len(shares)
    jobs, next_due, buried = await lease(ctx, "dequeue", count, shares[0].visibility, ctx.options.batch_size)
    out = [Leased(jobs[i : i + 1], next_due, buried) for i in range(count)]
    lost: list[Job] = []
    for share, got in zip(shares, out, strict=True):
        share.leased = got
        if share.cancelled:
            lost += got.jobs
    if lost:
        await give_back(ctx, jobs=lost)
    return out

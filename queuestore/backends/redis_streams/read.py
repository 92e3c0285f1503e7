"""The counting reads of ``redis-streams``: length, peek, stats and the health details.

Reads are plain commands (they change nothing); every state change is a script. Each read
first runs a sweep, so due delayed jobs count as ready and expired ones are gone.
"""

from __future__ import annotations

import anyio

from queuestore._args import text
from queuestore._job import Job, JobState
from queuestore._models import BackendStats, HealthStatus
from queuestore.backends._redis.errors import translating
from queuestore.backends.redis_streams.layout import id_after
from queuestore.backends.redis_streams.store import StreamsStore
from queuestore.errors import InvalidJobError

__all__ = ["add_health_details", "group_view", "length", "peek", "ready_count", "stats"]

#: entries per XRANGE page when counting ready entries
_COUNT_PAGE = 10000


async def group_view(store: StreamsStore, group: str) -> tuple[str, int | None, int]:
    """(last-delivered id, ready count if cheaply exact else None, pending) of ``group``.

    With one group and ``retention: delete`` every entry at or below the group's
    last-delivered id is pending, so ready = XLEN - pending. Otherwise the
    server's ``lag`` is not trusted (it over-counts after XDEL of undelivered
    entries, and KeyDB lacks it): the caller counts, paged.

    Raises:
        BackendError: the store failed.
    """
    client = store.conn.client
    with translating(store.name, "xinfo"):
        try:
            infos = await client.execute_command("XINFO", "GROUPS", store.keys.stream)
        except Exception as exc:
            if "no such key" in str(exc).lower():
                return "0-0", 0, 0
            raise
        xlen = int(await client.execute_command("XLEN", store.keys.stream))
    for info in infos:
        if isinstance(info, list | tuple):  # redis-py < 5.1 leaves XINFO GROUPS as flat pairs
            info = dict(zip(info[::2], info[1::2], strict=False))
        d = {text(k): v for k, v in info.items()} if isinstance(info, dict) else {}
        if text(d.get("name", b"")) == group:
            pending = int(d.get("pending", 0))
            exact = xlen - pending if len(infos) == 1 and not store.retain else None
            return text(d.get("last-delivered-id", b"0-0")), exact, pending
    return "0-0", None, 0


async def ready_count(store: StreamsStore) -> int:
    """Entries not yet delivered to the configured group.

    Raises:
        BackendError: the store failed.
    """
    last, ready, _ = await group_view(store, store.group)
    if ready is not None:
        return ready
    n, start = 0, id_after(last)
    while True:
        page = await store.call("length", "XRANGE", store.keys.stream, start, "+", "COUNT", _COUNT_PAGE)
        n += len(page)
        if len(page) < _COUNT_PAGE:
            return n
        start = id_after(text(page[-1][0]))


async def length(store: StreamsStore) -> int:
    """Ready (entries not yet delivered to the configured group) + delayed jobs.

    Raises:
        BackendError: the store failed.
    """
    await store.sweep()
    return await ready_count(store) + int(await store.call("length", "ZCARD", store.keys.delayed))


async def peek(store: StreamsStore, offset: int) -> Job | None:
    """The ready entry at ``offset`` after the group's last-delivered id.

    The entries are read from the nearer end: from the head (XRANGE, ``offset + 1`` entries),
    or, when the ready count is exact (see :func:`group_view`) and ``offset`` lies in its back
    half, from the tail (XREVRANGE, ``ready - offset`` entries), so a peek at either end of a
    deep queue reads one entry. Like the read from the head, it is not one atomic step: calls
    running meanwhile may shift the answer by the entries they add or take.

    Raises:
        InvalidJobError: ``offset`` is not an int >= 0.
        BackendError: the store failed.
    """
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidJobError("offset", f"must be an int >= 0, got {offset!r}")
    await store.sweep()
    last, ready, _ = await group_view(store, store.group)
    stream, first = store.keys.stream, id_after(last)
    if ready is not None and offset >= ready:
        return None
    if ready is not None and offset >= ready // 2:
        back = ready - offset  # the entry's place counted from the tail, 1-based
        page = await store.call("peek", "XREVRANGE", stream, "+", first, "COUNT", back)
        if len(page) < back:  # consumed meanwhile: the queue is shorter than the count said
            return None
        eid, fields = page[back - 1]
        return store.decoded(fields, JobState.READY, f"entry {text(eid)} of {stream}")
    page = await store.call("peek", "XRANGE", stream, first, "+", "COUNT", offset + 1)
    if len(page) <= offset:
        return None
    eid, fields = page[offset]
    return store.decoded(fields, JobState.READY, f"entry {text(eid)} of {stream}")


async def stats(store: StreamsStore) -> BackendStats:
    """Depth per state, stream length, consumer lag, oldest pending age, rates.

    Raises:
        BackendError: the store failed.
    """
    await store.sweep()
    k = store.keys
    ready = await ready_count(store)
    pipe = store.conn.client.pipeline(transaction=False)
    pipe.execute_command("ZCARD", k.delayed)
    pipe.execute_command("XLEN", k.dead)
    pipe.execute_command("XLEN", k.stream)
    pipe.execute_command("HGETALL", k.counters)
    pipe.xpending_range(k.stream, store.group, "-", "+", 1)
    with translating(store.name, "stats"):
        delayed, dead, xlen, counters, oldest = await pipe.execute(raise_on_error=False)
    _, _, pending = await group_view(store, store.group)
    c = {text(a): int(b) for a, b in (counters.items() if isinstance(counters, dict) else [])}
    m = store.metrics
    age = None
    if isinstance(oldest, list) and oldest:
        age = int(oldest[0]["time_since_delivered"]) / 1000.0
    return BackendStats(
        backend=store.name, queue=store.queue, queue_depth=ready, delayed=int(delayed), in_flight=pending,
        dead=int(dead) if isinstance(dead, int) else 0, total_enqueued=c.get("enqueued", 0),
        total_dequeued=m.totals.get("dequeue", 0), total_acked=c.get("acked", 0),
        total_nacked=c.get("nacked", 0), total_dead_lettered=c.get("dead", 0),
        total_expired=c.get("expired", 0), total_dead_dropped=c.get("dead_dropped", 0),
        total_errors=m.totals.get("error", 0),
        stream_length=int(xlen) if isinstance(xlen, int) else 0, consumer_lag=ready,
        oldest_pending_age_s=age, connection_pool=store.conn.pool_stats(), **m.activity(),
    )  # fmt: skip


async def add_health_details(store: StreamsStore, status: HealthStatus) -> None:
    """Add corrupt entries and, when the server answered, consumer lag, pending count, oldest
    pending age and lost entries to ``status.details``; a failure is noted there, never raised."""
    status.details["corrupt_entries"] = str(store.corrupt_entries)
    if status.latency_ms is None:
        return
    limit = float(store.options.health_timeout)
    try:
        with anyio.move_on_after(limit) as scope:
            st = await stats(store)
            lost = int(await store.call("health", "HGET", store.keys.counters, "lost") or 0)
            status.details.update(
                consumer_lag=str(st.consumer_lag), pending=str(st.in_flight),
                oldest_pending_age_s=str(st.oldest_pending_age_s), lost_entries=str(lost),
            )  # fmt: skip
        if scope.cancelled_caught:
            status.details["stats_error"] = f"no answer within {limit:g}s (health_timeout)"
    except Exception as exc:  # health never raises
        status.details["stats_error"] = str(exc)

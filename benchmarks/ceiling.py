"""The ceiling: raw redis-py asyncio + hiredis doing each scenario's work with the fewest commands.

Measured in the same run, on the same server and with the same concurrency as the backends,
with plain ``redis.asyncio.Redis`` and its default connection pool (the fastest plain redis-py
code for the same work; ``--pool N`` caps the ceiling and the backends alike), so every backend
figure can be given as a ratio to it. The raw "queue" is the
minimum a reliable queue needs: a ready list, and on dequeue one script that moves the job
into an in-flight hash and writes its lease into a deadline zset; ack is one script that
removes both. Entries are a 32-hex id followed by ~200 bytes.

=========================  ====================================================  ======================
ceiling                    work                                                  compared with
=========================  ====================================================  ======================
evalsha_enqueue_1          EVALSHA (LPUSH) awaited one by one                    enqueue_1
evalsha_enqueue_32         the same from 32 tasks                                enqueue_32
lpush_pipeline_100         pipelines of 100 LPUSH                                enqueue_many (lists)
xadd_pipeline_100          pipelines of 100 XADD                                 enqueue_many (streams)
evalsha_pipeline_100       pipelines of 100 EVALSHA (LPUSH): one script per job  enqueue_many (both)
evalsha_dequeue_ack_1      EVALSHA move+lease, then EVALSHA ack, one by one      dequeue_ack_1
evalsha_dequeue_ack_32     the same from 32 tasks                                dequeue_ack_32
evalsha_batch_100          EVALSHA move+lease of 100, then EVALSHA ack of 100    dequeue_many (lists)
xreadgroup_100_xackdel     XREADGROUP COUNT 100, then one EVALSHA: XACK and      dequeue_many (streams)
                           XDEL of the 100 ids (an acked job leaves the stream)
xreadgroup_100_xack        XREADGROUP COUNT 100, then XACK of the 100 ids: the   (reported beside it:
                           acked entries stay in the stream, ~250 bytes a job    less than the same work)
xreadgroup_100_xacktrim    XREADGROUP COUNT 100, then one EVALSHA: XACK of the   (reported beside it:
                           ids and XTRIM MINID past the last, which frees the    right only while
                           batch as the stream's head                            nothing below the
                                                                                 batch is pending)
coalesced_dequeue_ack_32   32 tasks' per-job dequeue/ack, one batch script per   (the stretch: what
                           loop tick each (auto-pipelining, done by hand)        coalescing could reach)
=========================  ====================================================  ======================

End to end is the harmonic combination of the enqueue and drain ceilings (N jobs take
N/enqueue + N/drain seconds).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis.asyncio as aredis

from benchmarks.workload import Counter, Measure, Meter, WorkSplit, raw_jobs, run_tasks

__all__ = ["CEILINGS", "RawClient", "combine", "run_ceiling"]

ENQ = "return redis.call('LPUSH', KEYS[1], ARGV[1])"
DEQ = """
local v = redis.call('RPOP', KEYS[1])
if not v then return false end
local id = string.sub(v, 1, 32)
redis.call('ZADD', KEYS[2], ARGV[1], id)
redis.call('HSET', KEYS[3], id, v)
return v
"""
ACK = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
return 0
"""
DEQ_N = """
local vs = redis.call('RPOP', KEYS[1], ARGV[2])
if not vs then return {} end
for _, v in ipairs(vs) do
  local id = string.sub(v, 1, 32)
  redis.call('ZADD', KEYS[2], ARGV[1], id)
  redis.call('HSET', KEYS[3], id, v)
end
return vs
"""
ACK_N = """
local n = 0
for _, id in ipairs(ARGV) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('HDEL', KEYS[2], id)
    n = n + 1
  end
end
return n
"""
#: the ack of a streams drain that frees what it acked: XACK and XDEL of the ids in one call (the
#: fastest of XACK + XDEL pipelined and this script, measured side by side on Redis 7.0)
XACKDEL = """
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
"""
#: the same ack freeing the batch as the stream's head: one XTRIM MINID past its last id (what
#: the backend does when it finds the batch is the head; this drain does not check, and is right
#: only while nothing below the batch is pending, as in a lone consumer acking in order)
XACKTRIM = """
local n = redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
local hi = ARGV[#ARGV]
local dash = string.find(hi, '-', 1, true)
redis.call('XTRIM', KEYS[1], 'MINID', string.sub(hi, 1, dash) .. (tonumber(string.sub(hi, dash + 1)) + 1))
return n
"""


class RawClient:
    """A raw client: plain ``redis.asyncio.Redis`` with its default pool (hiredis when installed),
    or a blocking pool of ``pool`` connections when one is given."""

    def __init__(self, url: str, pool: int | None) -> None:
        if pool is None:
            self.client = aredis.Redis.from_url(url)
        else:
            self.client = aredis.Redis(
                connection_pool=aredis.BlockingConnectionPool.from_url(url, max_connections=pool, timeout=30)
            )
        self.sha: dict[str, str] = {}

    async def load(self) -> None:
        for name, body in (
            ("enq", ENQ),
            ("deq", DEQ),
            ("ack", ACK),
            ("deq_n", DEQ_N),
            ("ack_n", ACK_N),
            ("xackdel", XACKDEL),
            ("xacktrim", XACKTRIM),
        ):
            self.sha[name] = await self.client.script_load(body)

    async def aclose(self) -> None:
        await self.client.aclose()


class _Keys:
    def __init__(self, prefix: str) -> None:
        base = f"{prefix}raw:{{{uuid.uuid4().hex[:12]}}}"
        self.ready = f"{base}:ready"
        self.leases = f"{base}:leases"
        self.flight = f"{base}:flight"
        self.stream = f"{base}:stream"

    def all(self) -> list[str]:
        return [self.ready, self.leases, self.flight, self.stream]


async def _prefill_list(r: Any, key: str, entries: list[bytes]) -> None:
    for i in range(0, len(entries), 1000):
        await r.lpush(key, *entries[i : i + 1000])


async def _prefill_stream(r: Any, key: str, entries: list[bytes]) -> None:
    for i in range(0, len(entries), 500):
        pipe = r.pipeline(transaction=False)
        for e in entries[i : i + 500]:
            pipe.xadd(key, {b"j": e})
        await pipe.execute()
    await r.xgroup_create(key, "g", id="0")


async def _enqueue(raw: RawClient, k: _Keys, n: int, tasks: int, ctr: Counter, server: Any) -> Measure:
    r, sha = raw.client, raw.sha["enq"]
    entries = raw_jobs(n)
    split = WorkSplit(n)
    lat: list[float] = []
    pc = time.perf_counter

    async def worker(_: int) -> None:
        while split.take():
            e = entries[split.left]
            t = pc()
            await r.evalsha(sha, 1, k.ready, e)
            lat.append(pc() - t)
            ctr.done += 1

    async with Meter(server) as m:
        await run_tasks(tasks, worker)
    return m.result(n, enqueue=lat)


async def _pipelined(
    raw: RawClient, n: int, batch: int, ctr: Counter, server: Any, add: Callable[[Any, bytes], Any]
) -> Measure:
    """``n`` raw jobs sent in pipelines of ``batch``; ``add(pipe, entry)`` queues one command."""
    entries = raw_jobs(n)
    async with Meter(server) as m:
        for i in range(0, n, batch):
            pipe = raw.client.pipeline(transaction=False)
            for e in entries[i : i + batch]:
                add(pipe, e)
            await pipe.execute()
            ctr.done += min(batch, n - i)
    return m.result(n)


async def _lpush_pipeline(raw: RawClient, k: _Keys, n: int, batch: int, ctr: Counter, server: Any) -> Measure:
    return await _pipelined(raw, n, batch, ctr, server, lambda pipe, e: pipe.lpush(k.ready, e))


async def _xadd_pipeline(raw: RawClient, k: _Keys, n: int, batch: int, ctr: Counter, server: Any) -> Measure:
    return await _pipelined(raw, n, batch, ctr, server, lambda pipe, e: pipe.xadd(k.stream, {b"j": e}))


async def _evalsha_pipeline(
    raw: RawClient, k: _Keys, n: int, batch: int, ctr: Counter, server: Any
) -> Measure:
    sha = raw.sha["enq"]
    return await _pipelined(raw, n, batch, ctr, server, lambda pipe, e: pipe.evalsha(sha, 1, k.ready, e))


async def _dequeue_ack(raw: RawClient, k: _Keys, n: int, tasks: int, ctr: Counter, server: Any) -> Measure:
    r, deq, ack = raw.client, raw.sha["deq"], raw.sha["ack"]
    await _prefill_list(r, k.ready, raw_jobs(n))
    split = WorkSplit(n)
    lat_d: list[float] = []
    lat_a: list[float] = []
    lat_da: list[float] = []
    pc = time.perf_counter

    async def worker(_: int) -> None:
        while split.take():
            t0 = pc()
            v = await r.evalsha(deq, 3, k.ready, k.leases, k.flight, time.time() + 30.0)
            t1 = pc()
            if v is None:  # pragma: no cover - prefilled
                split.give_back(1)
                continue
            await r.evalsha(ack, 2, k.leases, k.flight, v[:32])
            t2 = pc()
            lat_d.append(t1 - t0)
            lat_a.append(t2 - t1)
            lat_da.append(t2 - t0)
            ctr.done += 1

    async with Meter(server) as m:
        await run_tasks(tasks, worker)
    return m.result(n, dequeue=lat_d, ack=lat_a, dequeue_ack=lat_da)


async def _batch(raw: RawClient, k: _Keys, n: int, batch: int, ctr: Counter, server: Any) -> Measure:
    r, deq, ack = raw.client, raw.sha["deq_n"], raw.sha["ack_n"]
    await _prefill_list(r, k.ready, raw_jobs(n))
    done = 0
    async with Meter(server) as m:
        while done < n:
            vs = await r.evalsha(deq, 3, k.ready, k.leases, k.flight, time.time() + 30.0, batch)
            if not vs:  # pragma: no cover - prefilled
                continue
            await r.evalsha(ack, 2, k.leases, k.flight, *[v[:32] for v in vs])
            done += len(vs)
            ctr.done = done
    return m.result(done)


async def _xread_drain(
    raw: RawClient, k: _Keys, n: int, batch: int, ctr: Counter, server: Any, free: str = ""
) -> Measure:
    """XREADGROUP COUNT ``batch`` until ``n`` are read, each batch acked by XACK alone, or by
    the script ``free`` names: ``xackdel`` (XACK and XDEL) or ``xacktrim`` (XACK and XTRIM)."""
    r = raw.client
    await _prefill_stream(r, k.stream, raw_jobs(n))
    done = 0
    async with Meter(server) as m:
        while done < n:
            got = await r.xreadgroup("g", "c", {k.stream: ">"}, count=batch)
            if not got:  # pragma: no cover - prefilled
                continue
            ids = [i for i, _ in got[0][1]]
            if free:
                await r.evalsha(raw.sha[free], 1, k.stream, "g", *ids)
            else:
                await r.xack(k.stream, "g", *ids)
            done += len(ids)
            ctr.done = done
    return m.result(done)


async def _xread(raw: RawClient, k: _Keys, n: int, batch: int, ctr: Counter, server: Any) -> Measure:
    return await _xread_drain(raw, k, n, batch, ctr, server)


async def _xread_del(raw: RawClient, k: _Keys, n: int, batch: int, ctr: Counter, server: Any) -> Measure:
    return await _xread_drain(raw, k, n, batch, ctr, server, free="xackdel")


async def _xread_trim(raw: RawClient, k: _Keys, n: int, batch: int, ctr: Counter, server: Any) -> Measure:
    return await _xread_drain(raw, k, n, batch, ctr, server, free="xacktrim")


class _Coalescer:
    """Per-job requests from many tasks, flushed as one batch call per event-loop tick.

    The shape of the stretch target (auto-pipelining): each caller awaits its own future; the
    first request of a tick schedules one flush, which sends everything queued by then."""

    def __init__(self, flush: Callable[[list[Any]], Any]) -> None:
        self._flush = flush
        self._pending: list[tuple[Any, asyncio.Future[Any]]] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, arg: Any) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._pending.append((arg, fut))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._start)
        return fut

    def _start(self) -> None:
        task = asyncio.ensure_future(self._run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        try:
            results = await self._flush([a for a, _ in batch])
        except Exception as exc:
            for _, fut in batch:
                fut.set_exception(exc)
            return
        for (_, fut), r in zip(batch, results, strict=True):
            fut.set_result(r)


async def _coalesced(raw: RawClient, k: _Keys, n: int, tasks: int, ctr: Counter, server: Any) -> Measure:
    r, deq, ack = raw.client, raw.sha["deq_n"], raw.sha["ack_n"]
    await _prefill_list(r, k.ready, raw_jobs(n))

    async def flush_dequeue(reqs: list[Any]) -> list[Any]:
        vs = await r.evalsha(deq, 3, k.ready, k.leases, k.flight, time.time() + 30.0, len(reqs))
        vs = list(vs or [])
        return vs + [None] * (len(reqs) - len(vs))

    async def flush_ack(ids: list[Any]) -> list[Any]:
        await r.evalsha(ack, 2, k.leases, k.flight, *ids)
        return [1] * len(ids)

    dq, ak = _Coalescer(flush_dequeue), _Coalescer(flush_ack)
    split = WorkSplit(n)
    lat: list[float] = []
    pc = time.perf_counter

    async def worker(_: int) -> None:
        while split.take():
            t0 = pc()
            v = await dq.submit(None)
            if v is None:  # pragma: no cover - prefilled
                split.give_back(1)
                continue
            await ak.submit(v[:32])
            lat.append(pc() - t0)
            ctr.done += 1

    async with Meter(server) as m:
        await run_tasks(tasks, worker)
    return m.result(n, dequeue_ack=lat)


#: name -> (description, runner(raw, keys, n, param, counter, server_client)); param is tasks or batch
CEILINGS: dict[str, tuple[str, Callable[..., Any], str]] = {
    "evalsha_enqueue_1": ("EVALSHA LPUSH, awaited one by one", _enqueue, "one"),
    "evalsha_enqueue_32": ("EVALSHA LPUSH from {c} tasks", _enqueue, "tasks"),
    "lpush_pipeline_100": ("pipelined LPUSH by {b}", _lpush_pipeline, "batch"),
    "xadd_pipeline_100": ("pipelined XADD by {b}", _xadd_pipeline, "batch"),
    "evalsha_pipeline_100": (
        "pipelined EVALSHA (LPUSH) by {b}: one script per job",
        _evalsha_pipeline,
        "batch",
    ),
    "evalsha_dequeue_ack_1": ("EVALSHA move+lease, EVALSHA ack, one by one", _dequeue_ack, "one"),
    "evalsha_dequeue_ack_32": ("EVALSHA move+lease + EVALSHA ack from {c} tasks", _dequeue_ack, "tasks"),
    "evalsha_batch_100": ("EVALSHA move+lease of {b}, EVALSHA ack of {b}", _batch, "batch"),
    "xreadgroup_100_xackdel": ("XREADGROUP COUNT {b} + EVALSHA (XACK + XDEL)", _xread_del, "batch"),
    # beside the one above: XACK alone leaves every acked entry in the stream
    "xreadgroup_100_xack": ("XREADGROUP COUNT {b} + XACK (acked entries kept)", _xread, "batch"),
    # and one that frees the batch as the stream's head without checking that it is
    "xreadgroup_100_xacktrim": ("XREADGROUP COUNT {b} + EVALSHA (XACK + XTRIM MINID)", _xread_trim, "batch"),
    # not a ceiling of any scenario: what coalescing per-job calls (the stretch) could reach
    "coalesced_dequeue_ack_32": (
        "{c} tasks calling per-job dequeue/ack, coalesced per loop tick into batch EVALSHAs",
        _coalesced,
        "tasks",
    ),
}


async def run_ceiling(
    raw: RawClient,
    name: str,
    n: int,
    *,
    concurrency: int,
    batch: int,
    ctr: Counter,
    server: Any,
    prefix: str = "qsbench:",
) -> Measure:
    """Run one ceiling on fresh keys (deleted afterwards)."""
    _desc, fn, kind = CEILINGS[name]
    param = {"one": 1, "tasks": concurrency, "batch": batch}[kind]
    k = _Keys(prefix)
    try:
        return await fn(raw, k, n, param, ctr, server)  # type: ignore[no-any-return]
    finally:
        await raw.client.delete(*k.all())


def combine(rate_a: float | None, rate_b: float | None) -> float | None:
    """Jobs/s of doing A then B for every job (harmonic combination)."""
    if not rate_a or not rate_b:
        return None
    return 1.0 / (1.0 / rate_a + 1.0 / rate_b)

"""Memory against a raw layout, what a drained queue keeps, and the cost of single operations at
growing queue depth.

- :func:`raw_memory`: server bytes per job of the smallest layout that holds the same payloads
  (one ``HSET`` of id -> JSON payload into a hash and one ``LPUSH`` of the id), the yardstick of
  the backends' bytes per queued job.
- :func:`queue_keys`: the queue's keys left on the server after a drain, each with its type,
  length and ``MEMORY USAGE`` (a benchmark-only ``SCAN`` over the run's own prefix).
- :func:`scale`: ``dequeue()`` + ``ack()``, ``peek()`` of the last ready job and one page of
  ``iter()`` (forward and reverse; 100 jobs, or the whole queue if smaller), in µs per operation,
  on queues of each size; the queue is
  loaded with ``enqueue_many`` in batches of 1,000 (its rate is reported) and drained untimed.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from benchmarks.cost import used_memory
from benchmarks.scenarios import Bench, batched, open_backend
from benchmarks.workload import PAYLOAD, Counter, make_jobs
from queuestore import IterOptions
from queuestore.abc import QueueBackend
from queuestore.errors import QueueStoreError

__all__ = ["SCALE_OPS", "ScaleResult", "queue_keys", "raw_memory", "scale"]

#: the operations timed at every size
SCALE_OPS = ("peek_last", "iter_page", "iter_page_reverse", "dequeue_ack")
LOAD_BATCH = 1000
PAGE = 100
BUDGET = 3.0  # seconds of samples per operation and size at most (3 samples at least)


@dataclass
class ScaleResult:
    sizes: list[int]
    #: op -> median µs per operation at each size (None: the op raised there, see ``errors``)
    us_per_op: dict[str, list[float | None]] = field(default_factory=dict)
    #: op -> samples taken at each size
    samples: dict[str, list[int]] = field(default_factory=dict)
    load_jobs_per_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def ratio(self, op: str) -> float | None:
        """Cost at the largest size over cost at the smallest (None if either has no figure)."""
        first, last = self.us_per_op[op][0], self.us_per_op[op][-1]
        return last / first if first and last is not None else None


async def raw_memory(bench: Bench, n: int) -> float:
    """Server bytes per job of ``n`` payloads held as a raw hash (id -> JSON payload) plus a list
    of the ids; the keys are deleted afterwards."""
    server = bench.server
    tag = f"{bench.key_prefix}raw:{{{uuid.uuid4().hex[:12]}}}"
    h, lst = f"{tag}:jobs", f"{tag}:ready"
    payload = msgspec.json.encode(PAYLOAD)
    try:
        base = await used_memory(server)
        for i in range(0, n, LOAD_BATCH):
            ids = [uuid.uuid4().hex for _ in range(min(LOAD_BATCH, n - i))]
            pipe = server.pipeline(transaction=False)
            pipe.hset(h, mapping=dict.fromkeys(ids, payload))
            pipe.lpush(lst, *ids)
            await pipe.execute()
        filled = await used_memory(server)
    finally:
        await server.delete(h, lst)
    return (filled - base) / n


_LENGTH = {b"list": "llen", b"hash": "hlen", b"zset": "zcard", b"set": "scard", b"stream": "xlen",
           b"string": "strlen"}  # fmt: skip


async def queue_keys(bench: Bench, queue: str) -> list[dict[str, Any]]:
    """Every key of ``queue`` on the server (its name carries the ``{queue}`` tag): type, length
    (elements, or bytes of a string) and ``MEMORY USAGE``."""
    server = bench.server
    out: list[dict[str, Any]] = []
    async for key in server.scan_iter(match=f"{bench.key_prefix}*{{{queue}}}*", count=1000):
        kind = await server.type(key)
        length = await getattr(server, _LENGTH[kind])(key) if kind in _LENGTH else None
        name = key.decode() if isinstance(key, bytes) else str(key)
        out.append({
            "key": name.removeprefix(bench.key_prefix), "type": kind.decode(), "length": length,
            "bytes": await server.memory_usage(key, samples=0),
        })  # fmt: skip
    return sorted(out, key=lambda e: str(e["key"]))


async def _load(backend: QueueBackend, n: int, ctr: Counter) -> float:
    """Enqueue ``n`` jobs (enqueue_many in batches of 1,000 where offered); returns jobs/s."""
    t0 = time.perf_counter()
    for i in range(0, n, LOAD_BATCH):
        jobs = make_jobs(backend.queue, min(LOAD_BATCH, n - i))
        if batched(backend):
            await backend.enqueue_many(jobs)
        else:
            for job in jobs:
                await backend.enqueue(job)
        ctr.done += len(jobs)
    return n / (time.perf_counter() - t0)


async def _page(backend: QueueBackend, page: int, reverse: bool) -> int:
    got = 0
    it = backend.iter(IterOptions(count=page, reverse=reverse))
    try:
        async for _ in it:
            got += 1
            if got == page:
                break
    finally:
        close = getattr(it, "aclose", None)
        if close is not None:
            await close()
    return got


def _more(xs: list[float], k: int) -> bool:
    """Another sample? Up to ``k``, but at least 3 and no more once an op took :data:`BUDGET` s."""
    return len(xs) < k and (len(xs) < 3 or sum(xs) < BUDGET)


async def _time_ops(backend: QueueBackend, k: int, page: int) -> dict[str, list[float] | str]:
    """Seconds per operation of each of :data:`SCALE_OPS`, up to ``k`` of each (the reads
    first, on the full queue; then the dequeue + ack), or the error that stopped the op."""
    last = await backend.length() - 1

    async def peek_last() -> None:
        if await backend.peek(last) is None:
            raise RuntimeError(f"peek({last}) returned None on a queue of {last + 1}")

    async def iter_page(reverse: bool) -> None:
        if await _page(backend, page, reverse) != page:
            raise RuntimeError(f"a page of iter(reverse={reverse}) held fewer than {page} jobs")

    async def dequeue_ack() -> None:
        job = await backend.dequeue()
        if job is None:
            raise RuntimeError("dequeue returned None on a loaded queue")
        await backend.ack(job)

    ops: dict[str, Callable[[], Awaitable[None]]] = {
        "peek_last": peek_last,
        "iter_page": lambda: iter_page(False),
        "iter_page_reverse": lambda: iter_page(True),
        "dequeue_ack": dequeue_ack,
    }
    pc = time.perf_counter
    out: dict[str, list[float] | str] = {}
    for op in SCALE_OPS:
        xs: list[float] = []
        try:
            while _more(xs, k):
                t0 = pc()
                await ops[op]()
                xs.append(pc() - t0)
            out[op] = xs
        except QueueStoreError as exc:  # e.g. a call past the backend's socket timeout
            out[op] = f"{type(exc).__name__}: {exc}"
    return out


async def scale(bench: Bench, btype: str, sizes: list[int], ctr: Counter, samples: int = 500) -> ScaleResult:
    """At each size, on a fresh queue: load it, time ``samples`` of each operation, drain it.
    An operation that raises a backend error at a size gets no figure there (``errors``)."""
    res = ScaleResult(sizes=list(sizes), us_per_op={op: [] for op in SCALE_OPS})
    for size in sizes:
        k = max(1, min(samples, size // 2))
        async with open_backend(bench, btype, "scale") as backend:
            res.load_jobs_per_s.append(await _load(backend, size, ctr))
            for op, xs in (await _time_ops(backend, k, min(PAGE, size))).items():
                if isinstance(xs, str):
                    res.errors.append(f"{op} at {size:,}: {xs}")
                    res.us_per_op[op].append(None)
                    res.samples.setdefault(op, []).append(0)
                    continue
                res.us_per_op[op].append(statistics.median(xs) * 1e6)
                res.samples.setdefault(op, []).append(len(xs))
    return res

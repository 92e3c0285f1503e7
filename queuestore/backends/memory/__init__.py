"""The ``memory`` backend: in-process, the embedded default and the reference semantics.

Queues live in a process-wide store keyed by ``options.namespace`` (default: the
config name, else ``"default"``): two backends on one namespace see the same
queues, as two backends on one Redis server do, so ``move`` works between them.
Nothing survives the process (``persistence`` is false).

Semantics every other backend must match (the conformance suite checks them):

* ready jobs: priority 9 first, FIFO within a priority; delayed jobs by due time.
* dequeue leases: ``attempt + 1``, ``started_at``, a fresh random ``lease_token``,
  ``lease_deadline = now + visibility_timeout``.
* an expired lease is reclaimed to the *tail* of its priority with
  ``retry_count + 1`` (``last_error`` "lease expired"), or dead-lettered with
  reason "lease expired" when that would exceed ``max_retries``. Reclaim runs at
  the start of every operation except the lease holder's own (ack, nack,
  extend_lease, move) and every ``reclaim_interval`` in the maintenance loop.
  A lease past its deadline stays the holder's until it is reclaimed (as on
  Redis): an ack then still lands. Dead-lettering keeps ``retry_count`` and ``attempt``.
* a waiting (ready or delayed) job past ``expires_at`` is dropped and counted
  in ``BackendStats.total_expired``; an in-flight job is not dropped.
* every public coroutine yields to the event loop once (a checkpoint, as a
  round trip to a server would) before its atomic step, so concurrent
  consumers interleave fairly; a cancellation at that point leaves nothing done.
* ``move`` sends a leased, waiting or dead job to another queue of the same
  namespace as ready, with ``origin_queue`` set; moving a job that was moved to
  the target from here already is a no-op, so a retried move is safe (an id the
  target holds from elsewhere is not found here).

Example::

    backend = await MemoryBackendFactory().create(BackendConfig(type="memory", queue="emails"))
    async with backend:  # also runs the maintenance loop
        await backend.enqueue(Job(payload={"to": "a@b.c"}))

Tests get an isolated store with ``options={"namespace": unique_namespace()}``
and may replace the namespace's ``clock`` (``get_namespace(name).clock``) to move
time without sleeping; :func:`drop_namespace` forgets one.
"""

from __future__ import annotations

from queuestore.backends.memory.backend import MemoryBackend
from queuestore.backends.memory.factory import MemoryBackendFactory
from queuestore.backends.memory.namespace import Namespace, drop_namespace, get_namespace, unique_namespace
from queuestore.backends.memory.options import MemoryOptions

__all__ = [
    "MemoryBackend",
    "MemoryBackendFactory",
    "MemoryOptions",
    "Namespace",
    "drop_namespace",
    "get_namespace",
    "unique_namespace",
]

"""The backend contract: ``QueueBackend``, ``BackendFactory`` and their helpers.

A backend serves one queue (``BackendConfig.queue_name()``) on one store. It is
an async context manager: ``create`` (from a factory or the registry) returns
it connected; ``async with`` additionally runs its maintenance loop (reclaim of
expired leases, promotion of due delayed jobs) in a task group that is opened
and closed in the same task. Correctness never depends on that loop: dequeue
reclaims and promotes opportunistically too.

Job arguments (``ack``, ``nack``, ``move``, ``extend_lease``) take either the
``Job`` that ``dequeue`` returned -- guarded by its lease token, so a stale
holder gets :class:`~queuestore.LeaseLostError` -- or a bare job id, which acts
on whatever lease is current (unguarded).

This module only re-exports; the contract lives in :mod:`queuestore._contract`,
one concept per module, and ``QueueBackend`` is composed of its small ABCs.
"""

from queuestore._args import JobRef
from queuestore._contract.backend import QueueBackend
from queuestore._contract.factory import BackendFactory
from queuestore._contract.migration import LeaseHandBack, MigrationSupport

__all__ = [
    "BackendFactory",
    "JobRef",
    "LeaseHandBack",
    "MigrationSupport",
    "QueueBackend",
]

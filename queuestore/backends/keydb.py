"""The ``keydb`` backend type: the Redis backends with KeyDB's tuned defaults.

``layout: lists`` (default) makes a :class:`~queuestore.backends.redis_lists.RedisListsBackend`,
``layout: streams`` a :class:`~queuestore.backends.redis_streams.RedisStreamsBackend`;
every other option is that layout's. Defaults where the operator set nothing (the
seed's): ``max_connections`` = pool_size * 2 (20), ``read_timeout`` 100 ms,
``write_timeout`` 200 ms, ``pipeline_size`` = batch_size (100).

What KeyDB does differently is probed at connect, not assumed from this type name
(see ``docs/servers.md``): no ``#!lua`` script header, XAUTOCLAIM's two-element reply
(a nil in place of a deleted entry, whose id stays pending -- the streams scripts
parse both shapes), no ``lag`` in XINFO GROUPS, no CLIENT NO-EVICT, no WAITAOF.
KeyDB's active-replica mode (last writer wins per key) is unsafe for queues and is
not supported.

Example::

    backends:
      bulk:
        type: keydb
        url: redis://keydb:6379/0
        options: {layout: lists, pipeline_size: 1000}
"""

from __future__ import annotations

from typing import ClassVar

from queuestore.backends._dialect import DialectFactory, DialectListsOptions, DialectStreamsOptions

__all__ = ["KeyDBFactory", "KeyDBListsOptions", "KeyDBStreamsOptions"]

KeyDBListsOptions = DialectListsOptions
KeyDBStreamsOptions = DialectStreamsOptions


class KeyDBFactory(DialectFactory):
    """Creates ``keydb`` backends (a lists or streams layout with KeyDB's defaults)."""

    backend_type: ClassVar[str] = "keydb"

"""The ``keydb`` backend type: the Redis backends with KeyDB's tuned defaults.

``layout: lists`` (default) makes a :class:`~queuestore.backends.redis_lists.RedisListsBackend`,
``layout: streams`` a :class:`~queuestore.backends.redis_streams.RedisStreamsBackend`;
every other option is that layout's. Tuned defaults where the operator set nothing
(from the ``defaults:`` section): ``max_connections`` = pool_size * 2 (20), ``read_timeout`` 100 ms,
``write_timeout`` 200 ms, ``pipeline_size`` = batch_size (100).

What KeyDB does differently is probed at connect, not assumed from this type name
(see ``docs/servers.md``): no ``#!lua`` script header, XAUTOCLAIM's two-element reply
(a nil in place of a deleted entry, whose id stays pending -- the streams scripts
parse both shapes), no ``lag`` in XINFO GROUPS, no CLIENT NO-EVICT, no WAITAOF, and
blocking timeouts that hang the server once a blocked client returns early: a consumer's
wait blocks with timeout 0 and the client bounds it (``backends/_redis/blocking.py``).
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


class KeyDBListsOptions(DialectListsOptions, kw_only=True, forbid_unknown_fields=True):
    """The options of a ``keydb`` backend with ``layout: lists`` (the ``redis-lists`` options)."""


class KeyDBStreamsOptions(DialectStreamsOptions, kw_only=True, forbid_unknown_fields=True):
    """The options of a ``keydb`` backend with ``layout: streams`` (the ``redis-streams`` options)."""


class KeyDBFactory(DialectFactory):
    """Creates ``keydb`` backends (a lists or streams layout with KeyDB's tuned defaults)."""

    backend_type: ClassVar[str] = "keydb"
    options_type = KeyDBListsOptions
    streams_options = KeyDBStreamsOptions
    pool_factor = 2
    pipeline_factor = 1
    read_timeout = 0.1
    write_timeout = 0.2

"""The ``dragonfly`` backend type: the Redis backends with Dragonfly's tuned defaults.

``layout: lists`` (default) makes a :class:`~queuestore.backends.redis_lists.RedisListsBackend`,
``layout: streams`` a :class:`~queuestore.backends.redis_streams.RedisStreamsBackend`;
every other option is that layout's. Tuned defaults where the operator set nothing
(from the ``defaults:`` section): ``max_connections`` = pool_size * 3 (30), ``read_timeout`` 50 ms,
``write_timeout`` 100 ms, ``pipeline_size`` = batch_size * 2 (200), ``compression``
on (zlib, bodies from ``compression_threshold`` bytes, marked so that entries
written without compression still decode).

What Dragonfly does differently is probed at connect, not assumed from this type
name (see ``docs/servers.md``): scripts may touch only the keys they declare (ours
declare every key -- proven by the strict-keys tests), ``#!lua`` is a compile error
(Dragonfly's own header is ``--!df flags=``; our scripts need none of its flags),
no AOF (snapshots only: ``wait_for_fsync`` is refused at open), WAIT only from
v1.40, no CLIENT NO-EVICT, and its emulated cluster mode does not check slot
ownership.

Example::

    backends:
      fast:
        type: dragonfly
        url: redis://dragonfly:6379/0
        options: {layout: streams, consumer_group: workers}
"""

from __future__ import annotations

from typing import ClassVar

from queuestore.backends._dialect import DialectFactory, DialectListsOptions, DialectStreamsOptions

__all__ = ["DragonflyFactory", "DragonflyListsOptions", "DragonflyStreamsOptions"]


class DragonflyListsOptions(DialectListsOptions, kw_only=True, forbid_unknown_fields=True):
    """The options of a ``dragonfly`` backend with ``layout: lists`` (the ``redis-lists`` options)."""


class DragonflyStreamsOptions(DialectStreamsOptions, kw_only=True, forbid_unknown_fields=True):
    """The options of a ``dragonfly`` backend with ``layout: streams`` (the ``redis-streams`` options)."""


class DragonflyFactory(DialectFactory):
    """Creates ``dragonfly`` backends (a lists or streams layout with Dragonfly's tuned defaults)."""

    backend_type: ClassVar[str] = "dragonfly"
    options_type = DragonflyListsOptions
    streams_options = DragonflyStreamsOptions
    pool_factor = 3
    pipeline_factor = 2
    read_timeout = 0.05
    write_timeout = 0.1
    compression = True

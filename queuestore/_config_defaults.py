"""What a backend config gets without the operator writing it.

The options a type takes from the ``defaults:`` section (the generic connection
defaults of the Redis family, then what the type's factory tunes, asked through
the registry), and a config for another type on the same server as a given one
(what a migration to a backend *type* targets).
"""

from __future__ import annotations

from typing import Any

from queuestore._config_rules import REDIS_FAMILY, connection_defaults, connection_options
from queuestore._models import BackendConfig, DefaultsConfig
from queuestore._registry import BackendRegistry

__all__ = ["config_on_server", "type_defaults"]


def type_defaults(registry: BackendRegistry, backend_type: str, defaults: DefaultsConfig) -> dict[str, Any]:
    """The options ``backend_type`` takes from the ``defaults:`` section.

    A Redis-family type gets the connection defaults, over which its factory's
    own values (``BackendFactory.option_defaults``) win: KeyDB and Dragonfly tune
    pool size, timeouts and pipelining. A factory that cannot be loaded adds
    nothing; other types get only what their factory gives.
    """
    fill = connection_defaults(defaults) if backend_type in REDIS_FAMILY else {}
    fill.update(registry.option_defaults(backend_type, defaults))
    return fill


def config_on_server(
    registry: BackendRegistry,
    backend_type: str,
    *,
    like: BackendConfig,
    queue: str,
    defaults: DefaultsConfig | None = None,
) -> BackendConfig:
    """A config for ``backend_type`` on the same server as ``like``, serving ``queue``.

    Same url, database, cluster settings and credentials (``password``,
    ``username``, ``tls``, ``ssl_*``/``tls_*`` options) as ``like``; the type's
    defaults from ``defaults`` (none when None); no other option. A non-Redis
    type (``memory``) gets no server settings. Options the type's factory does
    not accept are dropped.
    """
    if backend_type not in REDIS_FAMILY:
        return BackendConfig(type=backend_type, name=backend_type, queue=queue)
    options = type_defaults(registry, backend_type, defaults) if defaults is not None else {}
    if like.type in REDIS_FAMILY:
        options.update(connection_options(like.options))
    accepted = registry.option_names(backend_type)
    if accepted is not None:
        options = {k: v for k, v in options.items() if k in accepted}
    return BackendConfig(
        type=backend_type,
        name=backend_type,
        url=like.url,
        database=like.database,
        queue=queue,
        cluster_mode=like.cluster_mode,
        cluster_addrs=list(like.cluster_addrs),
        options=options,
    )

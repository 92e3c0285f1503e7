"""Throwaway real Redis servers for your own tests: a standalone server or a Redis Cluster.

Every server is a real ``redis-server`` process (or whatever ``$QUEUESTORE_TEST_SERVER_BIN``
names: valkey-server, keydb-server...) on a free loopback port, never 6379, with its files in a
private temp dir. A standalone server can run with the AOF (``appendfsync always`` on request)
and be stopped, killed (``kill -9``), paused (SIGSTOP) and restarted on the same port and dir;
a :class:`RedisCluster` is 3 (or more) primaries made with ``redis-cli --cluster create``
(``$QUEUESTORE_TEST_CLI_BIN`` names another CLI). Servers and clusters are context managers,
sync and async. Whatever is left running is stopped at interpreter exit, and servers left
behind by a run that was killed are reaped by the next one (:func:`reap_orphans`).

Needs no pytest: see docs/testing.md for a fixture example.
"""

from queuestore.testing._binaries import CLI_BIN_ENV, SERVER_BIN_ENV, cli_binary, server_binary
from queuestore.testing._cluster import RedisCluster
from queuestore.testing._errors import ServerBinaryNotFoundError, ServerError, ServerStartError
from queuestore.testing._factory import ServerFactory
from queuestore.testing._lifetime import reap_orphans, stop_all
from queuestore.testing._ports import FORBIDDEN_PORTS, HOST, free_port
from queuestore.testing._server import RedisServer

__all__ = [
    "CLI_BIN_ENV",
    "FORBIDDEN_PORTS",
    "HOST",
    "SERVER_BIN_ENV",
    "RedisCluster",
    "RedisServer",
    "ServerBinaryNotFoundError",
    "ServerError",
    "ServerFactory",
    "ServerStartError",
    "cli_binary",
    "free_port",
    "reap_orphans",
    "server_binary",
    "stop_all",
]

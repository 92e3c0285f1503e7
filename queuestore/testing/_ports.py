"""Free loopback ports for throwaway servers (never the shared Redis port 6379)."""

from __future__ import annotations

import random
import socket

from queuestore.testing._errors import ServerError

__all__ = ["FORBIDDEN_PORTS", "HOST", "free_port"]

HOST = "127.0.0.1"
#: never bound: 6379 (and its cluster-bus port) belong to the machine's shared Redis
FORBIDDEN_PORTS = frozenset({6379, 16379})
_LOW, _HIGH = 20000, 45000


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port that is free now, whose cluster-bus port (+10000) is free too.

    Picked at random in 20000..45000 (below the kernel's ephemeral range, so client sockets
    rarely take it), never 6379. Another process can still take it before the server binds:
    :meth:`RedisServer.start` then retries on another port.

    Returns:
        The port number.

    Raises:
        ServerError: no free port was found in 500 tries.
    """
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randrange(_LOW, _HIGH)
        if port in FORBIDDEN_PORTS or port + 10000 in FORBIDDEN_PORTS:
            continue
        if _port_is_free(port) and _port_is_free(port + 10000):
            return port
    raise ServerError(f"no free loopback port found in {_LOW}..{_HIGH}")

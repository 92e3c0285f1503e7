"""A maker of throwaway servers that stops every one it made in one call."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from queuestore.testing._server import RedisServer

__all__ = ["ServerFactory"]


class ServerFactory:
    """Makes started :class:`RedisServer` instances; :meth:`close` stops them and removes their dirs.

    ``factory(appendonly=True)`` takes the :class:`RedisServer` arguments. Also a context manager
    (``with ServerFactory() as make:``) that closes on exit.
    """

    def __init__(self) -> None:
        self.servers: list[RedisServer] = []

    def __call__(self, **kwargs: Any) -> RedisServer:
        """Make and start one more server.

        Args:
            **kwargs: :class:`RedisServer` arguments.

        Returns:
            The started server.

        Raises:
            ServerBinaryNotFoundError: the binary is missing.
            ServerStartError: it did not come up.
        """
        server = RedisServer(**kwargs)
        self.servers.append(server)
        return server.start()

    def close(self) -> None:
        """Stop every server made so far and remove their dirs."""
        servers, self.servers = self.servers, []
        for server in servers:
            server.cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

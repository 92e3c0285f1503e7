"""The errors of :mod:`queuestore.testing`."""

from __future__ import annotations

__all__ = ["ServerBinaryNotFoundError", "ServerError", "ServerStartError"]


class ServerError(RuntimeError):
    """A throwaway server could not be found, started or driven."""


class ServerBinaryNotFoundError(ServerError):
    """The server (or CLI) binary is not installed, or not where the env var says."""


class ServerStartError(ServerError):
    """The server did not come up; the message carries the tail of its log."""

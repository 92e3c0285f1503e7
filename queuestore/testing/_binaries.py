"""Which server and CLI binaries the throwaway servers run, with env var overrides."""

from __future__ import annotations

import os
import shutil

from queuestore.testing._errors import ServerBinaryNotFoundError

__all__ = ["CLI_BIN_ENV", "SERVER_BIN_ENV", "cli_binary", "server_binary"]

SERVER_BIN_ENV = "QUEUESTORE_TEST_SERVER_BIN"
CLI_BIN_ENV = "QUEUESTORE_TEST_CLI_BIN"


def _resolve_binary(env_var: str, default: str, what: str, explicit: str | None) -> str:
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise ServerBinaryNotFoundError(
                f"{explicit!r} does not name an executable {what} (not found, or not executable)."
            )
        return found
    configured = os.environ.get(env_var, "").strip()
    name = configured or default
    found = shutil.which(name)
    if found is None:
        if configured:
            raise ServerBinaryNotFoundError(
                f"{env_var}={configured!r} does not name an executable {what} (not found, or not "
                f"executable). Point it at a Redis-compatible binary (redis-server, valkey-server, "
                f"keydb-server; redis-cli for the CLI) or unset it to use {default!r} from PATH."
            )
        raise ServerBinaryNotFoundError(
            f"{default!r} was not found on PATH. Install it (Debian: apt-get install -y redis-server, "
            f"which also brings redis-cli) or set {env_var} to a Redis-compatible {what}."
        )
    return found


def server_binary(binary: str | None = None) -> str:
    """The server binary: ``binary``, else ``$QUEUESTORE_TEST_SERVER_BIN``, else ``redis-server``.

    Args:
        binary: a name on PATH or a path; when given, the env var is not read.

    Returns:
        The full path of the executable.

    Raises:
        ServerBinaryNotFoundError: with what to install or set.
    """
    return _resolve_binary(SERVER_BIN_ENV, "redis-server", "server binary", binary)


def cli_binary(binary: str | None = None) -> str:
    """The CLI that creates clusters: ``binary``, else ``$QUEUESTORE_TEST_CLI_BIN``, else ``redis-cli``.

    Args:
        binary: a name on PATH or a path; when given, the env var is not read.

    Returns:
        The full path of the executable.

    Raises:
        ServerBinaryNotFoundError: with what to install or set.
    """
    return _resolve_binary(CLI_BIN_ENV, "redis-cli", "CLI binary", binary)

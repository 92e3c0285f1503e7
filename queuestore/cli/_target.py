"""Where a command looks: a YAML config, or one backend given by ``--url/--type/--queue``.

Resolution order: ``--url``/``--type`` (one backend, named ``cli``, serving the queue
given by the command or ``--queue``); else ``--config FILE``; else ``$QUEUESTORE_CONFIG``;
else ``storage.yaml`` in the working directory. Nothing found is a usage error.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from queuestore._config import QueueConfig, StorageConfig
from queuestore._config_loader import load_config_from_file
from queuestore._manager import BackendManager
from queuestore._models import BackendConfig
from queuestore._redact import redact
from queuestore.errors import BackendError, ConfigurationError

__all__ = ["CONFIG_ENV", "DEFAULT_CONFIG", "Target", "UsageError"]

CONFIG_ENV = "QUEUESTORE_CONFIG"
DEFAULT_CONFIG = "storage.yaml"
URL_BACKEND = "cli"


class UsageError(Exception):
    """The command line does not say enough (exit code 2)."""


@dataclass(frozen=True)
class Target:
    """The options every command takes (``--config``, ``--url``, ``--type``, ``--queue``)."""

    config: str | None = None
    url: str | None = None
    type: str | None = None
    queue: str | None = None

    def config_path(self) -> Path | None:
        """The YAML file to read, or None in ``--url``/``--type`` mode.

        Raises:
            UsageError: no ``--config``, no ``$QUEUESTORE_CONFIG`` and no ``storage.yaml``.
        """
        if self.url or self.type:
            return None
        if self.config:
            return Path(self.config)
        env = os.environ.get(CONFIG_ENV, "").strip()
        if env:
            return Path(env)
        if Path(DEFAULT_CONFIG).is_file():
            return Path(DEFAULT_CONFIG)
        raise UsageError(
            f"no configuration: pass --config FILE, set ${CONFIG_ENV}, put {DEFAULT_CONFIG} in the "
            "working directory, or give --url URL --type TYPE --queue QUEUE"
        )

    def describe(self) -> str:
        """Where the command looks, for messages (passwords redacted)."""
        path = self.config_path()
        if path is not None:
            return str(path)
        return redact(f"{self.type or 'redis-lists'} at {self.url or '(in process)'}")

    def storage_config(self, queue: str | None = None) -> StorageConfig:
        """The StorageConfig to use, defaults applied and validated.

        Args:
            queue: the queue the command is about (it must be configured, in config mode).

        Raises:
            UsageError: nothing to read, or ``--url`` mode without a queue.
            ConfigurationError: the file is unreadable or invalid (field path named),
                or ``queue`` is not in it (field ``queues.<queue>``).
        """
        path = self.config_path()
        wanted = queue or self.queue
        if path is None:
            if not wanted:
                raise UsageError("--url/--type need a queue: give it as an argument or with --queue")
            backend = BackendConfig(type=self.type or "redis-lists", name=URL_BACKEND, url=self.url or "")
            config = StorageConfig(backends={URL_BACKEND: backend}, queues={wanted: QueueConfig()})
        else:
            config = load_config_from_file(path)
        config.apply_defaults()
        config.validate()
        if wanted and wanted not in config.queues:
            known = ", ".join(sorted(config.queues)) or "none"
            raise ConfigurationError(f"queues.{wanted}", f"not configured in {path} (queues: {known})")
        return config

    @contextlib.asynccontextmanager
    async def open(self, queue: str | None = None) -> AsyncIterator[BackendManager]:
        """A BackendManager over ``queue`` only (when given) or every configured queue.

        Raises:
            UsageError: see :meth:`storage_config`.
            ConfigurationError: the config is invalid.
            BackendError: a backend could not connect.
        """
        config = self.storage_config(queue)
        wanted = queue or self.queue
        if wanted:
            config.queues = {wanted: config.queues[wanted]}
        manager = await BackendManager.from_config(config)
        try:
            yield manager
        finally:
            await manager.aclose()

    @contextlib.asynccontextmanager
    async def open_each(
        self, queue: str | None = None
    ) -> AsyncIterator[tuple[BackendManager, dict[str, BackendError]]]:
        """Like :meth:`open`, but a backend that cannot be created is reported, not raised.

        Yields:
            the manager (routing the queues that opened) and, by queue, the error of each
            queue whose backend could not be created.

        Raises:
            UsageError: see :meth:`storage_config`.
            ConfigurationError: the config is invalid.
        """
        config = self.storage_config(queue)
        wanted = queue or self.queue
        queues = [wanted] if wanted else list(config.queues)
        failed: dict[str, BackendError] = {}
        manager = BackendManager(config=config)  # not entered: no maintenance loops from a CLI read
        try:
            for name in queues:
                try:
                    await manager.add_backend(name, config.backend_config_for_queue(name))
                except BackendError as exc:
                    failed[name] = exc
            yield manager, failed
        finally:
            await manager.aclose()

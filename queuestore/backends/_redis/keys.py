"""The key layout: every key of one queue shares one hash tag, ``{queue}``.

``QueueKeys(prefix="queue:", queue="emails").key("ready")`` is
``queue:{emails}:ready``. Because the whole queue hashes to one slot, every
script can receive all the keys it touches in KEYS -- on Redis Cluster,
Dragonfly (which rejects undeclared keys) and managed serverless Redis alike.
Each backend documents its own suffixes in a layout table.
"""

from __future__ import annotations

from queuestore._args import check_queue_name
from queuestore.errors import ConfigurationError

__all__ = ["QueueKeys", "validate_queue_name"]


def validate_queue_name(name: str, field: str = "queue") -> str:
    """Check a queue name can be used as a hash tag (see :func:`queuestore._args.check_queue_name`).

    Raises:
        ConfigurationError: empty, longer than 200 characters, or containing
            braces, whitespace (tabs too), control characters or NUL.
    """
    return check_queue_name(name, field)


class QueueKeys:
    """Builds the keys of one queue under its hash tag.

    Args:
        prefix: the backend's ``key_prefix`` (e.g. ``"queue:"``).
        queue: the queue name (checked with :func:`validate_queue_name`).
    """

    __slots__ = ("base", "prefix", "queue")

    def __init__(self, prefix: str, queue: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise ConfigurationError("options.key_prefix", f"must not contain braces, got {prefix!r}")
        self.prefix = prefix
        self.queue = validate_queue_name(queue)
        self.base = f"{prefix}{{{queue}}}"

    def key(self, suffix: str) -> str:
        """The key ``<prefix>{<queue>}:<suffix>``."""
        return f"{self.base}:{suffix}"

    def for_queue(self, queue: str) -> QueueKeys:
        """The same layout for another queue (a move target)."""
        return QueueKeys(self.prefix, queue)

    def __repr__(self) -> str:
        return f"QueueKeys({self.base!r})"

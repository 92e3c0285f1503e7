"""Where a queue lives, said without secrets, and who owns a migration (owner ids).

A :class:`HomeDescriptor` names a backend type, its server (the URL rebuilt from its
parsed form, without credentials or query options), database, cluster settings, key
prefix or memory namespace, and a digest of its options. It is what the migration
record stores as the target and, once writes go there, as the queue's new ``home``.

An owner id is ``<host>:<pid>:<random>``: a process on the same host can tell that an
owner no longer runs and take its migration over as soon as its lease runs out.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid

import msgspec

from queuestore._models import BackendConfig
from queuestore._url import parse_server_url
from queuestore.errors import ConfigurationError

__all__ = ["HomeDescriptor", "describe", "owner_dead_here", "owner_id", "owner_pid", "same_place"]

_ENC = msgspec.json.Encoder(order="deterministic")


class HomeDescriptor(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Where a queue lives: a backend type on a server, under a key prefix -- no secret.

    ``url`` is rebuilt from the parsed URL without credentials or query options;
    ``options_digest`` tells two option sets apart without showing them.
    """

    type: str
    name: str = ""
    url: str = ""
    database: int | None = None
    cluster_mode: bool = False
    cluster_addrs: list[str] = msgspec.field(default_factory=list)
    key_prefix: str = ""
    namespace: str = ""
    options_digest: str = ""

    def label(self) -> str:
        """A one-line description for messages and logs."""
        where = self.url or self.namespace or ",".join(self.cluster_addrs)
        prefix = f" key_prefix {self.key_prefix!r}" if self.key_prefix else ""
        return f"{self.type} {self.name + ' ' if self.name else ''}at {where}{prefix}"

    def encode(self) -> str:
        """As stored in the record."""
        return _ENC.encode(self).decode()

    @classmethod
    def decode(cls, raw: str) -> HomeDescriptor:
        """From the record.

        Raises:
            msgspec.DecodeError: not a descriptor.
        """
        return msgspec.json.decode(raw, type=cls)


def _public_url(url: str) -> str:
    """``url`` without credentials and query options (parsed, not pattern-matched)."""
    if not url:
        return ""
    try:
        u = parse_server_url(url)
    except ConfigurationError:
        return "<unparsable url>"
    if u.scheme == "unix":
        return f"unix://{u.path}"
    host = f"[{u.host}]" if ":" in u.host else u.host
    return f"{u.scheme}://{host}:{u.port}" + (f"/{u.db}" if u.db is not None else "")


def describe(cfg: BackendConfig) -> HomeDescriptor:
    """The descriptor of the store ``cfg`` reaches (no secret in it)."""
    opts = cfg.options
    digest = hashlib.sha256(_ENC.encode(opts)).hexdigest()[:16] if opts else ""
    prefix, ns = opts.get("key_prefix", ""), opts.get("namespace", "")
    return HomeDescriptor(
        type=cfg.type,
        name=cfg.name,
        url=_public_url(cfg.url),
        database=cfg.database,
        cluster_mode=bool(cfg.cluster_mode),
        cluster_addrs=sorted(cfg.cluster_addrs),
        key_prefix=prefix if isinstance(prefix, str) else "",
        namespace=ns if isinstance(ns, str) else (cfg.name if cfg.type == "memory" else ""),
        options_digest=digest,
    )


def same_place(a: HomeDescriptor, b: HomeDescriptor) -> bool:
    """Whether two descriptors name the same store (type, server, database, cluster, key
    prefix or namespace; the name and the options digest aside)."""

    def place(d: HomeDescriptor) -> tuple[object, ...]:
        return (d.type, d.url, d.database, d.cluster_mode, tuple(d.cluster_addrs), d.key_prefix, d.namespace)

    return place(a) == place(b)


def owner_id() -> str:
    """A new owner id: host, process id and a random part (one per run)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_pid(owner: str) -> int | None:
    """The process id in an owner id when that owner runs on this host, else None."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    return int(pid) if host == socket.gethostname() and pid.isascii() and pid.isdigit() else None


def owner_dead_here(owner: str) -> bool:
    """True when ``owner`` is a process of this host that no longer runs."""
    pid = owner_pid(owner)
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False

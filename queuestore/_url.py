"""Server addresses: the one parser of ``redis://``, ``rediss://`` and ``unix://`` URLs and
the one ``host:port`` checker, shared by config validation and the Redis connection.

Every error is a :class:`~queuestore.errors.ConfigurationError` naming the field it was
given (``url``, ``cluster_addrs[1]``...); no message repeats a password.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

from queuestore._redact import redact, redact_url
from queuestore.errors import ConfigurationError

__all__ = ["SCHEMES", "ServerURL", "parse_server_url", "split_host_port"]

#: the URL schemes a server address may use
SCHEMES = ("redis", "rediss", "unix")
#: the port of a URL that names none
_DEFAULT_PORT = 6379


@dataclass(frozen=True)
class ServerURL:
    """A checked server URL.

    Attributes:
        scheme: ``redis``, ``rediss`` or ``unix``.
        host: the host name (empty for ``unix``).
        port: the port (6379 when the URL names none).
        path: the socket path (``unix`` only).
        db: the database the URL names (path or ``?db=``), None when it names none.
        username, password: the URL's credentials, percent-decoded.
    """

    scheme: str
    host: str = ""
    port: int = _DEFAULT_PORT
    path: str = ""
    db: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def _db_int(text: str, what: str, field_name: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise ConfigurationError(field_name, f"{what} must be an int >= 0, got {text!r}")
    return int(text)


def _credentials(userinfo: str) -> tuple[str | None, str | None]:
    user, sep, password = userinfo.partition(":")
    return (
        urllib.parse.unquote(user) if user else None,
        urllib.parse.unquote(password) if sep and password else None,
    )


def parse_server_url(url: str, field_name: str = "url") -> ServerURL:
    """Check and split a ``redis://``, ``rediss://`` or ``unix://`` URL.

    The database comes from the path (``redis://h:6379/2``) or, failing that, from
    a ``?db=`` query parameter; a password may hold ``@`` (the last one ends it) but
    not ``/``, ``?`` or ``#`` unless percent-encoded.

    Raises:
        ConfigurationError: naming ``field_name``; the message never repeats a password.
    """
    if not isinstance(url, str) or not url:
        raise ConfigurationError(field_name, "must be a non-empty redis://, rediss:// or unix:// URL")
    head, sep, rest = url.partition("://")
    username = password = None
    if sep and "@" in rest:
        userinfo, _, hostpart = rest.rpartition("@")
        if any(c in userinfo for c in "/?#"):
            raise ConfigurationError(
                field_name, "the user/password part holds '/', '?' or '#': percent-encode it"
            )
        username, password = _credentials(userinfo)
        url = f"{head}://{hostpart}"
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise ConfigurationError(field_name, f"not a valid URL ({redact(exc)})") from None
    if parts.scheme not in SCHEMES:
        raise ConfigurationError(
            field_name, f"scheme must be one of {', '.join(SCHEMES)}, got {parts.scheme or 'none'!r}"
        )
    query = urllib.parse.parse_qs(parts.query)
    db: int | None = None
    if "db" in query:
        db = _db_int(query["db"][-1], "the db query parameter", field_name)
    if parts.scheme == "unix":
        if not parts.path:
            raise ConfigurationError(field_name, "a unix:// URL needs a socket path")
        return ServerURL(scheme="unix", path=parts.path, db=db, username=username, password=password)
    try:
        port = parts.port
    except ValueError:
        text = parts.netloc.rpartition(":")[2]
        if not text.isdigit():  # may be a password written without "@host": never echo it
            raise ConfigurationError(
                field_name, "port must be an int in 0..65535 (a password needs '@host' after it)"
            ) from None
        raise ConfigurationError(field_name, f"port must be an int in 0..65535, got {text!r}") from None
    if not parts.hostname:
        raise ConfigurationError(field_name, f"no host in {redact_url(url)!r}")
    path = parts.path.strip("/")
    if path:
        db = _db_int(path, "the database in the URL path", field_name)
    return ServerURL(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port or _DEFAULT_PORT,
        db=db,
        username=username,
        password=password,
    )


def split_host_port(addr: str, field_name: str) -> tuple[str, int]:
    """Check a ``host:port`` address (a cluster node); return host and port.

    Raises:
        ConfigurationError: naming ``field_name``: no ``host:port`` shape, or a port
            outside 1..65535.
    """
    host, sep, port = addr.rpartition(":") if isinstance(addr, str) else ("", "", "")
    if not sep or not host.strip("[]"):
        raise ConfigurationError(field_name, f"expected host:port, got {redact(addr)!r}")
    if not port.isdigit() or not port.isascii() or not 0 < int(port) < 65536:
        raise ConfigurationError(field_name, f"port must be an int in 1..65535, got {port!r}")
    return host, int(port)

"""Server addresses: the one parser of server URLs and the one ``host:port`` checker, shared
by config validation and the Redis connection.

The rules are redis-py's ``from_url`` rules, made strict:

* schemes ``redis://`` (TCP), ``rediss://`` (TLS), ``unix://`` (a socket path), and
  ``valkey://`` / ``valkeys://`` as the same as ``redis://`` / ``rediss://``;
* the database from the path (``redis://h:6379/2``) or ``?db=`` (both: they must agree);
* user and password from the URL (percent-decoded) or ``?username=`` / ``?password=``;
* every other query option is a connection option, under redis-py's name
  (``socket_timeout``, ``ssl_cert_reqs``...) or queuestore's (``read_timeout``,
  ``tls_verify``...): it is applied, and over the backend's ``options`` (as in redis-py,
  the URL wins). An option that is not supported, a repeated one or a bad value is an
  error; nothing is silently dropped.

Every error is a :class:`~queuestore.errors.ConfigurationError` naming the field it was
given (``url``, ``cluster_addrs[1]``...); no message repeats a password.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from queuestore._durations import to_seconds
from queuestore._redact import redact, redact_url
from queuestore.errors import ConfigurationError

__all__ = [
    "OPTION_ALIASES",
    "QUERY_OPTIONS",
    "SCHEMES",
    "ServerURL",
    "alias_value",
    "parse_server_url",
    "split_host_port",
]

#: the URL schemes a server address may use, and what each one means
SCHEMES = {"redis": "redis", "rediss": "rediss", "valkey": "redis", "valkeys": "rediss", "unix": "unix"}
#: the port of a URL that names none
_DEFAULT_PORT = 6379

#: redis-py's connection option names, accepted as aliases of queuestore's (alias -> options set)
OPTION_ALIASES: dict[str, tuple[str, ...]] = {
    "socket_connect_timeout": ("conn_timeout",),
    "socket_timeout": ("read_timeout", "write_timeout"),
    "health_check_interval": ("idle_timeout",),
    "ssl": ("tls",),
    "ssl_ca_certs": ("tls_ca_file",),
    "ssl_certfile": ("tls_cert_file",),
    "ssl_keyfile": ("tls_key_file",),
    "ssl_cert_reqs": ("tls_verify",),
    "ssl_check_hostname": ("tls_check_hostname",),
}

#: query options of a URL and their kinds (queuestore's names and redis-py's)
QUERY_OPTIONS: dict[str, str] = {
    "conn_timeout": "seconds",
    "read_timeout": "seconds",
    "write_timeout": "seconds",
    "pool_timeout": "seconds",
    "idle_timeout": "seconds",
    "socket_connect_timeout": "seconds",
    "socket_timeout": "seconds",
    "health_check_interval": "seconds",
    "max_connections": "int",
    "max_retries": "int",
    "tls_ca_file": "str",
    "tls_cert_file": "str",
    "tls_key_file": "str",
    "ssl_ca_certs": "str",
    "ssl_certfile": "str",
    "ssl_keyfile": "str",
    "tls_verify": "bool",
    "tls_check_hostname": "bool",
    "ssl_check_hostname": "bool",
    "ssl_cert_reqs": "cert_reqs",
}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_CERT_REQS = {"none": False, "required": True}


@dataclass(frozen=True)
class ServerURL:
    """A checked server URL.

    Attributes:
        scheme: ``redis``, ``rediss`` or ``unix`` (``valkey`` / ``valkeys`` are mapped).
        host: the host name (empty for ``unix``).
        port: the port (6379 when the URL names none).
        path: the socket path (``unix`` only).
        db: the database the URL names (path or ``?db=``), None when it names none.
        username, password: the URL's credentials, percent-decoded.
        options: the URL's query options as connection options, by queuestore's names
            (``{"read_timeout": 2.0, "write_timeout": 2.0}`` for ``?socket_timeout=2``).
    """

    scheme: str
    host: str = ""
    port: int = _DEFAULT_PORT
    path: str = ""
    db: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    options: dict[str, Any] = field(default_factory=dict)


def alias_value(alias: str, value: Any) -> Any:
    """The value of the queuestore option an alias sets (``ssl_cert_reqs="none"`` -> False).

    Raises:
        ConfigurationError: ``ssl_cert_reqs`` is not ``none`` or ``required``.
    """
    if alias == "ssl_cert_reqs" and not isinstance(value, bool):
        text = str(value).strip().lower().removeprefix("cert_")
        if text not in _CERT_REQS:
            raise ConfigurationError(
                alias, f"must be 'none' or 'required' (no 'optional' verification), got {value!r}"
            )
        return _CERT_REQS[text]
    return value


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


def _query_value(name: str, text: str, field_name: str) -> Any:
    kind = QUERY_OPTIONS[name]
    where = f"query option {name!r}"
    if kind == "seconds":
        try:
            return to_seconds(text, name)
        except ConfigurationError as exc:
            raise ConfigurationError(field_name, f"{where}: {exc.message}") from None
    if kind == "int":
        return _db_int(text, where, field_name)
    if kind == "bool":
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ConfigurationError(field_name, f"{where} must be true or false, got {text!r}")
    if kind == "cert_reqs":
        try:
            return alias_value(name, text)
        except ConfigurationError as exc:
            raise ConfigurationError(field_name, f"{where}: {exc.message}") from None
    if not text:
        raise ConfigurationError(field_name, f"{where} must not be empty")
    return text


def _query(query: str, field_name: str) -> tuple[dict[str, str], dict[str, Any]]:
    """Split a query into its special items (db, username, password) and connection options."""
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigurationError(field_name, "the query is not name=value pairs joined by '&'") from None
    special: dict[str, str] = {}
    options: dict[str, Any] = {}
    seen: set[str] = set()
    for name, text in pairs:
        if name in seen:
            raise ConfigurationError(field_name, f"query option {name!r} is given more than once")
        seen.add(name)
        if name in ("db", "username", "password"):
            special[name] = text
        elif name in QUERY_OPTIONS:
            value = _query_value(name, text, field_name)
            for target in OPTION_ALIASES.get(name, (name,)):
                if target in options and options[target] != value:
                    raise ConfigurationError(
                        field_name, f"query option {name!r} conflicts with another spelling of {target!r}"
                    )
                options[target] = value
        else:
            hint = " (the scheme says it: rediss:// for TLS)" if name in ("ssl", "tls") else ""
            raise ConfigurationError(
                field_name,
                f"query option {name!r} is not supported{hint}; supported: db, username, password, "
                + ", ".join(sorted(QUERY_OPTIONS)),
            )
    return special, options


def parse_server_url(url: str, field_name: str = "url") -> ServerURL:
    """Check and split a ``redis://``, ``rediss://``, ``valkey://``, ``valkeys://`` or
    ``unix://`` URL (see the module docstring for the rules).

    A password may hold ``@`` (the last one ends it) but not ``/``, ``?`` or ``#``
    unless percent-encoded.

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
    scheme = SCHEMES.get(parts.scheme)
    if scheme is None:
        raise ConfigurationError(
            field_name, f"scheme must be one of {', '.join(SCHEMES)}, got {parts.scheme or 'none'!r}"
        )
    if parts.fragment:
        raise ConfigurationError(field_name, "a URL fragment ('#...') means nothing here: remove it")
    special, options = _query(parts.query, field_name)
    for name, given in (("username", username), ("password", password)):
        if name in special:
            if given is not None and given != special[name]:
                raise ConfigurationError(field_name, f"{name} is given twice (before '@' and as ?{name}=)")
            if not special[name]:
                raise ConfigurationError(field_name, f"query option {name!r} must not be empty")
    username = special.get("username", username)
    password = special.get("password", password)
    db: int | None = None
    if "db" in special:
        db = _db_int(special["db"], "the db query option", field_name)
    if scheme == "unix":
        if not parts.path:
            raise ConfigurationError(field_name, "a unix:// URL needs a socket path")
        path = urllib.parse.unquote(parts.path)
        return ServerURL(
            scheme="unix", path=path, db=db, username=username, password=password, options=options
        )
    try:
        port = parts.port
    except ValueError:
        text = parts.netloc.rpartition(":")[2]
        if not text.isdigit():  # may be a password written without "@host": never echo it
            raise ConfigurationError(
                field_name, "port must be an int in 1..65535 (a password needs '@host' after it)"
            ) from None
        raise ConfigurationError(field_name, f"port must be an int in 1..65535, got {text!r}") from None
    if port == 0:
        raise ConfigurationError(field_name, "port must be an int in 1..65535, got 0")
    if not parts.hostname:
        raise ConfigurationError(field_name, f"no host in {redact_url(url)!r}")
    path = parts.path.strip("/")
    if path:
        path_db = _db_int(path, "the database in the URL path", field_name)
        if db is not None and db != path_db:
            raise ConfigurationError(field_name, f"the path names database {path_db}, ?db= names {db}")
        db = path_db
    return ServerURL(
        scheme=scheme,
        host=parts.hostname,
        port=port if port is not None else _DEFAULT_PORT,
        db=db,
        username=username,
        password=password,
        options=options,
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

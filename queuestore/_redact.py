"""Secrets out of text, by parsing: every error message, log line and repr goes through here.

Three layers, strongest first:

* :func:`redact_url` parses one URL (or ``user:password@host`` address) and replaces
  its password; a URL without ``@host`` whose port is not a number (``redis://:PW``,
  ``redis://user:PW``) keeps only what stands before that colon.
* :func:`remember_secret` records a password the configuration holds (a URL's or an
  option's); :func:`redact` then replaces it wherever it appears, whatever
  characters it holds (``/``, ``@``, spaces, quotes...).
* :func:`redact` also parses the text it is given: each ``scheme://...`` token goes
  through :func:`redact_url`; ``key=value`` and quoted ``'key': 'value'`` pairs whose
  key names a secret (password, token...) lose their value; Redis's
  ``requirepass x`` / ``masterauth x`` / ``AUTH [user] x`` lose their arguments.
  Prose is left alone: ``lease_token: a lease token`` stays as it is.
"""

from __future__ import annotations

import re
import threading
import urllib.parse

__all__ = [
    "SECRET_KEY_WORDS",
    "is_secret_key",
    "redact",
    "redact_url",
    "remember_secret",
    "url_secrets",
]

#: option or field names holding one of these words hold a secret
SECRET_KEY_WORDS = ("password", "passwd", "secret", "token", "credential", "private_key")
_MASK = "***"
#: shorter remembered secrets are not scrubbed from free text (they would blank plain words);
#: they are still removed from URLs and config reprs, which are parsed
_MIN_SCRUB = 4
_MAX_REMEMBERED = 1024

_SECRETS: set[str] = set()
_LOCK = threading.Lock()

_URL_TOKEN = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]*")
_KEY = r"(?:\w*(?:password|passwd|secret|token|credential)\w*|pass|auth|requirepass|masterauth)"
# key=value (unquoted value) and 'key': 'value' / "key": "value" (quoted value, escapes honoured)
_QUOTED_VALUE = r"'(?:[^'\\]|\\.)*'" + "|" + r'"(?:[^"\\]|\\.)*"'
_KV_EQUALS = re.compile(rf"(?P<key>(?<!\w){_KEY}\s*=\s*)(?P<val>{_QUOTED_VALUE}|[^\s,;&)}}\]]+)", re.I)
_KV_QUOTED = re.compile(rf"(?P<key>(?P<q>['\"]){_KEY}(?P=q)\s*:\s*)(?P<val>{_QUOTED_VALUE})", re.I)
# Redis's own forms; a <placeholder> (as in the server's help texts) is not a secret
_CMD = re.compile(
    r"(?P<key>\b(?:requirepass|masterauth)\s+)(?P<val>(?!<\w+>)[^\s'\",)}]+)"
    r"|(?P<auth>\bAUTH\s+)(?P<args>(?!<\w+>)[^\s'\",)}]+(?:\s+(?!<\w+>)[^\s'\",)}]+)?)"
)


def is_secret_key(name: str) -> bool:
    """Whether an option or field called ``name`` holds a secret (``password``, ``sentinel_password``...)."""
    low = name.lower()
    return any(word in low for word in SECRET_KEY_WORDS)


def remember_secret(value: object) -> None:
    """Record a secret so that :func:`redact` replaces it wherever it appears.

    Values that are not non-empty strings are ignored; at most 1024 are kept.
    """
    if not isinstance(value, str) or not value:
        return
    with _LOCK:
        if value not in _SECRETS and len(_SECRETS) < _MAX_REMEMBERED:
            _SECRETS.add(value)


def _odd_port(rest: str) -> str | None:
    """For the part after ``scheme://`` of a URL without ``@``: the host, when what follows
    its ``:`` is not a port number (it may be a password); else None."""
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:end]
    if authority.startswith("["):  # [v6 address]:port
        _, bracket, after = authority.partition("]")
        if not bracket or not after or (after[:1] == ":" and _port_digits(after[1:])):
            return None
        return authority[: len(authority) - len(after)]
    host, colon, port = authority.partition(":")
    if not colon or _port_digits(port):
        return None
    return host


def _port_digits(text: str) -> bool:
    """Whether ``text`` reads as a port number: ASCII digits only (``"²"`` is a digit to
    ``str.isdigit`` and no port)."""
    return text.isascii() and text.isdigit()


def url_secrets(url: object) -> list[str]:
    """The password-like parts of a URL, raw and percent-decoded (for :func:`remember_secret`).

    The password after ``user:`` (the last ``@`` ends it), a user part without ``:``
    (it may be a password), and, without ``@host``, a non-numeric "port".
    """
    if not isinstance(url, str) or not url:
        return []
    _, sep, rest = url.partition("://")
    if not sep:
        rest = url
    found: list[str] = []
    if "@" in rest:
        userinfo = rest.rpartition("@")[0]
        user, colon, password = userinfo.partition(":")
        found.append(password if colon else user)
    elif sep and _odd_port(rest) is not None:
        found.append(rest.partition(":")[2])
    return [v for s in found if s for v in {s, urllib.parse.unquote(s)}]


def _mask_userinfo(userinfo: str) -> str:
    user, colon, _ = userinfo.partition(":")
    return f"{user}:{_MASK}" if colon else _MASK


def redact_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``, by parsing it.

    ``redis://user:pw@host:6379/0`` -> ``redis://user:***@host:6379/0``; the last ``@``
    ends the user part, so a password may hold ``@``, ``/``, ``:`` or spaces. A user
    part without ``:`` is masked whole (it may be a password). Without an ``@``, a
    non-numeric "port" may be a password (``redis://:PW``, ``redis://user:PW/x``): it
    and everything after it become ``***``. Text without ``://`` is read as
    ``[userinfo@]host:port``.
    """
    head, sep, rest = url.partition("://")
    prefix = f"{head}{sep}" if sep else ""
    if not sep:
        rest = url
    if "@" in rest:
        userinfo, _, hostpart = rest.rpartition("@")
        return f"{prefix}{_mask_userinfo(userinfo)}@{hostpart}"
    if not sep:
        return url
    host = _odd_port(rest)
    return url if host is None else f"{prefix}{host}:{_MASK}"


def _scrub_remembered(text: str) -> str:
    with _LOCK:
        secrets = sorted((s for s in _SECRETS if len(s) >= _MIN_SCRUB), key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, _MASK)
    return text


def _kv(m: re.Match[str]) -> str:
    val = m["val"]
    quote = val[0] if val[:1] in ("'", '"') else ""
    return f"{m['key']}{quote}{_MASK}{quote}"


def _cmd(m: re.Match[str]) -> str:
    if m["key"]:
        return f"{m['key']}{_MASK}"
    return f"{m['auth']}{_MASK}"


def redact(text: object) -> str:
    """Return ``str(text)`` with every password in it replaced by ``***``.

    Handles remembered secrets (see :func:`remember_secret`), URLs
    (``redis://user:secret@host``, ``redis://:secret``), ``password=...`` and
    ``'password': '...'`` pairs, and Redis's ``requirepass x`` / ``AUTH [user] x``.
    """
    s = _scrub_remembered(str(text))
    s = _URL_TOKEN.sub(lambda m: redact_url(m[0]), s)
    s = _CMD.sub(_cmd, s)
    s = _KV_QUOTED.sub(_kv, s)
    return _KV_EQUALS.sub(_kv, s)

"""Secrets out of text: every error message, log line and repr goes through :func:`redact`."""

from __future__ import annotations

import re

__all__ = ["redact"]

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]*)@")
_KV_PASSWORD = re.compile(
    r"(?P<key>(?:password|passwd|pass|requirepass|auth|secret|token)['\"]?\s*[:=]\s*['\"]?)"
    r"(?P<pw>[^'\",\s)}]+)",
    re.IGNORECASE,
)
# Redis's own space-separated forms: "requirepass secret", "AUTH secret", "AUTH user secret"
_CMD_PASSWORD = re.compile(
    r"(?P<key>\b(?:requirepass|masterauth)\s+)(?P<pw>[^\s'\",)}]+)|(?P<auth>\bAUTH\s+)(?P<rest>[^'\"\n)}]+)"
)


def redact(text: object) -> str:
    """Return ``str(text)`` with every password in it replaced by ``***``.

    Handles URLs (``redis://user:secret@host``), ``password=...`` /
    ``'password': '...'`` pairs, and Redis's ``requirepass x`` / ``AUTH [user] x``.
    """
    s = str(text)
    s = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", s)
    s = _CMD_PASSWORD.sub(lambda m: f"{m['key'] or m['auth']}***", s)
    return _KV_PASSWORD.sub(lambda m: f"{m['key']}***", s)

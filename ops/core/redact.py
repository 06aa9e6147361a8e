"""Secret scrubbing shared by logs, exceptions, Sentry events and messages.

Telegram puts the bot token in the URL path and DSNs carry passwords, so
anything that may reach a log line or a third party goes through `redact`.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_TOKEN = re.compile(r"bot\d+:[A-Za-z0-9_-]+")
_BARE_TOKEN = re.compile(r"\b\d{6,}:[A-Za-z0-9_-]{30,}\b")
# scheme://user:password@host  -> scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?P<at>@)")
# key=value password forms in libpq keyword DSNs and error messages
_KV_PASSWORD = re.compile(r"(?P<k>\bpassword\s*=\s*)(?P<v>'[^']*'|\S+)", re.IGNORECASE)

_extra_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a literal secret (a token, a Sentry key) so it is scrubbed anywhere."""
    if value and len(value) >= 6:
        _extra_secrets.add(value)


def redact(text: object) -> str:
    s = str(text)
    for secret in sorted(_extra_secrets, key=len, reverse=True):
        if secret in s:
            s = s.replace(secret, "<redacted>")
    s = _TOKEN.sub("bot<redacted>", s)
    s = _BARE_TOKEN.sub("<redacted>", s)
    s = _URL_PASSWORD.sub(lambda m: f"{m['head']}***{m['at']}", s)
    s = _KV_PASSWORD.sub(lambda m: f"{m['k']}***", s)
    return s


def mask_dsn(dsn: str | None) -> str:
    """A DSN fit to show: the password replaced by ***."""
    if not dsn:
        return ""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return redact(dsn)
    if not parts.password:
        return redact(dsn)
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    host = netloc[1] if len(netloc) == 2 else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def mask_url(url: str | None) -> str:
    """A ping URL fit to show: scheme and host only. Healthchecks-style URLs carry
    their secret in the path (/ping/<uuid>), so the path is never shown."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<url>"
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    tail = "/…" if parts.path.strip("/") or parts.query else ""
    return f"{parts.scheme}://{host}{port}{tail}"

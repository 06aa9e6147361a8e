"""Sentry for the daemon: errors, cron check-ins, and nothing secret on the wire.

- `init(settings)` turns Sentry on when SENTRY_DSN is set (environment =
  ENVIRONMENT, release = the package version). Without a DSN it does nothing
  and says nothing; every helper here is then a no-op.
- Exceptions are captured once, by the runner, with the job id as a tag. The
  logging integration is installed with `event_level=None`, so an error log
  line becomes a breadcrumb, not a second event for the same failure.
- Every secret in the settings (bot token, DSN passwords, the Sentry secret
  key, the heartbeat URL's path) is registered with the redactor when Sentry
  starts, and stack frames go without their local variables.
- `before_send` and `before_breadcrumb` scrub every string in the event
  (bot tokens, DSN passwords, the Sentry secret itself, anything in a field
  named like a password or token) and shorten user ids to 8 characters, as
  the backend's own Sentry setup does.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import sentry_sdk
from sentry_sdk.crons import MonitorStatus  # noqa: F401  (re-exported for callers)
from sentry_sdk.integrations.logging import LoggingIntegration
from sentry_sdk.utils import BadDsn, Dsn

from ops import __version__
from ops.core.redact import redact, register_secret
from ops.core.settings import Settings, SettingsError

log = logging.getLogger("opsbench.sentry")

_SENSITIVE_KEY = re.compile(r"pass(word|wd)?$|secret|token|api[_-]?key|authorization|cookie|(^|_)dsn$|credential",
                            re.IGNORECASE)
_USER_ID_KEYS = {"user_id", "userid", "user"}
_USER_ID_LEN = 8
_DSN_EXAMPLE = "https://<key>@o<org>.ingest.sentry.io/<project>"

_enabled = False


def dsn_problem(dsn: str | None) -> str | None:
    """None if `dsn` is usable (or empty); else what is wrong, in plain words."""
    if not dsn:
        return None
    try:
        parsed = Dsn(dsn)
    except BadDsn as e:
        return f"SENTRY_DSN is not a valid Sentry DSN ({redact(e)}); expected {_DSN_EXAMPLE}"
    if not parsed.public_key:
        return f"SENTRY_DSN has no public key; expected {_DSN_EXAMPLE}"
    return None


def init(settings: Settings) -> bool:
    """Start Sentry if SENTRY_DSN is set. True when on. A malformed DSN is a SettingsError."""
    global _enabled
    secret = settings.sentry_dsn.get_secret_value() if settings.sentry_dsn else ""
    if not secret:
        _enabled = False
        return False
    problem = dsn_problem(secret)
    if problem:
        raise SettingsError(problem)
    _register_secrets(settings, Dsn(secret))
    sentry_sdk.init(
        dsn=secret,
        environment=settings.environment,
        release=__version__,
        before_send=before_send,
        before_breadcrumb=before_breadcrumb,
        # a frame's local variables are not sent: a job's locals may hold any secret, in any shape
        # (a cut-off repr would slip past the redactor); the stack trace itself still is
        include_local_variables=False,
        # breadcrumbs from INFO up, but no events from log records: the runner
        # captures each exception itself, exactly once
        integrations=[LoggingIntegration(level=logging.INFO, event_level=None)],
        max_breadcrumbs=50,
        shutdown_timeout=2,
    )
    _enabled = True
    return True


def enabled() -> bool:
    return _enabled and sentry_sdk.get_client().is_active()


def _register_secrets(settings: Settings, dsn: Dsn) -> None:
    """Teach the redactor every literal secret in the settings, whatever shape it appears in.

    Done when Sentry starts, in every process that reports to it (the daemon, `opsbench run`), not only
    in the one that pings or sends: an exception or a breadcrumb from any job may carry any of them.
    """
    for secret in secrets_of(settings):
        register_secret(secret)
    register_secret(dsn.secret_key)


def secrets_of(settings: Settings) -> list[str]:
    """The literal secrets the settings hold: bot token, DSN passwords, Sentry keys, the heartbeat path."""
    from urllib.parse import urlsplit

    from sqlalchemy.engine import make_url

    out: list[str] = []
    if settings.telegram_bot_token:
        out.append(settings.telegram_bot_token.get_secret_value())
    for url in (settings.database_url, settings.maintenance_database_url, settings.state_url):
        if url:
            password = make_url(url).password
            if password:
                out.append(str(password))
    if settings.sentry_dsn:
        try:
            parsed = Dsn(settings.sentry_dsn.get_secret_value())
            out += [k for k in (parsed.secret_key,) if k]
        except BadDsn:
            pass
    if settings.heartbeat_url:
        # Healthchecks-style URLs carry their secret in the path (/ping/<uuid>): the whole path, the query
        # and each long segment of it, so a local holding just the uuid is scrubbed too
        parts = urlsplit(settings.heartbeat_url)
        path = parts.path.strip("/")
        out += [path, parts.query] + [seg for seg in path.split("/") if len(seg) >= 16]
    return [s for s in out if s]


# -- scrubbing -------------------------------------------------------------------

def scrub(value: Any, key: str | None = None) -> Any:
    """A copy of `value` with secrets redacted and user ids shortened, recursively."""
    if key is not None and isinstance(value, str):
        lowered = key.lower()
        if _SENSITIVE_KEY.search(lowered):
            return "[Filtered]" if value else value
        if lowered in _USER_ID_KEYS:
            return redact(value)[:_USER_ID_LEN]
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: scrub(v, k if isinstance(k, str) else None) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    return value


def before_send(event: dict, hint: dict) -> dict:
    user = event.get("user")
    if isinstance(user, dict) and user.get("id") is not None:
        user["id"] = str(user["id"])[:_USER_ID_LEN]
    return scrub(event)


def before_breadcrumb(crumb: dict, hint: dict) -> dict:
    return scrub(crumb)


# -- thin helpers the daemon uses --------------------------------------------------

def capture_exception(err: BaseException, tags: dict[str, str] | None = None) -> str | None:
    if not enabled():
        return None
    with sentry_sdk.new_scope() as scope:
        for k, v in (tags or {}).items():
            scope.set_tag(k, v)
        return sentry_sdk.capture_exception(err)


def checkin(slug: str, status: str, *, check_in_id: str | None = None, duration_s: float | None = None,
            monitor_config: dict | None = None) -> str | None:
    """One cron check-in. Returns its id (pass it to the closing check-in)."""
    if not enabled():
        return None
    try:
        return sentry_sdk.crons.capture_checkin(
            monitor_slug=slug, check_in_id=check_in_id, status=status,
            duration=duration_s, monitor_config=monitor_config,
        )
    except Exception as e:  # a monitoring hiccup must not fail a job
        log.warning("sentry check-in failed: %s", e)
        return None


def flush(timeout_s: float = 2.0) -> None:
    if enabled():
        sentry_sdk.flush(timeout=timeout_s)


def close(timeout_s: float = 2.0) -> None:
    """Flush and switch Sentry off (end of the daemon, end of a test)."""
    global _enabled
    if _enabled:
        client = sentry_sdk.get_client()
        client.flush(timeout=timeout_s)
        client.close(timeout=timeout_s)
    _enabled = False

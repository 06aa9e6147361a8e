"""`opsbench doctor`: check the configuration end to end and say what is wrong in plain words.

Each check returns a `Check` (ok / warn / fail, one line). Nothing here raises:
a check that cannot run is itself a failed check.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy.pool import NullPool

import queries
from ops.redact import mask_dsn, redact
from ops.settings import Settings

CONNECT_TIMEOUT_S = 5
HTTP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # ok | warn | fail
    message: str


def run_checks(settings: Settings) -> list[Check]:
    checks = [check_jobs(settings)]
    checks += [check_database(role, settings) for role in ("analytics", "maintenance", "state")]
    checks += [check_telegram(settings), check_sentry(settings), check_heartbeat(settings)]
    return checks


def check_jobs(settings: Settings) -> Check:
    from ops.jobspec import jobs_file, load_jobs

    try:
        specs = load_jobs(settings)
    except Exception as e:
        return Check("jobs file", "fail", str(e))
    enabled = sum(s.enabled for s in specs)
    return Check("jobs file", "ok", f"{len(specs)} job(s), {enabled} enabled, from {jobs_file(settings)}")


def _connect_problem(err: BaseException) -> str:
    text = redact(getattr(err, "orig", None) or err)
    low = text.lower()
    if "connection refused" in low:
        return "nothing is listening there (connection refused)"
    if "password authentication failed" in low:
        return "the server rejected the user name or password"
    if "timeout" in low or "timed out" in low:
        return "the connection timed out (host down or a firewall in the way?)"
    if "could not translate host name" in low or "name or service not known" in low:
        return "the host name does not resolve"
    if "does not exist" in low:
        line = next((ln for ln in text.splitlines() if "does not exist" in ln), text.splitlines()[0])
        return line.split("FATAL:")[-1].strip()
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__


def check_database(role: str, settings: Settings) -> Check:
    from ops import db

    name = f"{role} database"
    try:
        resolved = db.resolve(role, settings)
    except Exception as e:
        return Check(name, "fail", f"cannot start the embedded database: {redact(e)}")
    where = resolved.masked() + (" (embedded)" if resolved.embedded else "")
    sql = queries.load("state/daemon")
    engine = None
    try:
        engine = db.make_engine(role, settings, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}, poolclass=NullPool)
        with engine.connect() as conn:
            info = sql.session_info.execute(conn).one()
            privileges = sql.state_privileges.execute(conn).one() if role == "state" else None
    except Exception as e:
        return Check(name, "fail", f"cannot connect to {where}: {_connect_problem(e)}")
    finally:
        if engine is not None:
            engine.dispose()

    who = f"connected as {info.usr} to {info.db} (PostgreSQL {info.server_version})"
    if role == "analytics":
        if info.read_only != "on":
            return Check(name, "fail", f"{who}, but the session is not read-only")
        return Check(name, "ok", f"{who}; read-only session, statement_timeout {info.statement_timeout}")
    if role == "maintenance":
        return Check(name, "ok", f"{who}; lock_timeout {info.lock_timeout}, statement_timeout {info.statement_timeout}")
    assert privileges is not None
    if privileges.schema_exists and privileges.can_write_schema:
        return Check(name, "ok", f"{who}; may write schema opsbench")
    if not privileges.schema_exists and privileges.can_create_schema:
        return Check(name, "ok", f"{who}; schema opsbench will be created on first start")
    return Check(name, "fail", f"{who}, but {info.usr} may not create tables in schema opsbench "
                               f"(GRANT CREATE ON DATABASE {info.db} TO {info.usr}, or make it the schema owner)")


def check_telegram(settings: Settings) -> Check:
    token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
    if not token:
        return Check("telegram", "warn", "TELEGRAM_BOT_TOKEN is not set: alerts are printed to the console, "
                                         "nobody gets a Telegram message")
    if not settings.telegram_chat_id:
        return Check("telegram", "fail", "TELEGRAM_CHAT_ID is not set: the bot has no chat to send alerts to")
    try:
        from ops.telegram import TelegramClient
    except ImportError:
        return Check("telegram", "warn", "cannot check: the Telegram client (ops.telegram) is not installed")
    try:
        with TelegramClient(token, api_base=settings.telegram_api_base, chat_id=settings.telegram_chat_id,
                            timeout=HTTP_TIMEOUT_S, max_attempts=1) as client:
            me = client.get_me()
    except Exception as e:
        text = redact(e)
        if "401" in text or "unauthorized" in text.lower():
            return Check("telegram", "fail", "Telegram rejected TELEGRAM_BOT_TOKEN (getMe: unauthorized)")
        return Check("telegram", "fail", f"getMe failed: {text}")
    username = me.get("username") if isinstance(me, dict) else None
    return Check("telegram", "ok", f"bot @{username or '?'} answers getMe; alerts go to chat {settings.telegram_chat_id}")


def check_sentry(settings: Settings) -> Check:
    from sentry_sdk.utils import Dsn

    from ops.sentry import dsn_problem

    dsn = settings.sentry_dsn.get_secret_value() if settings.sentry_dsn else ""
    if not dsn:
        return Check("sentry", "warn", "SENTRY_DSN is not set: daemon errors and cron check-ins are not reported")
    problem = dsn_problem(dsn)
    if problem:
        return Check("sentry", "fail", problem)
    parsed = Dsn(dsn)
    try:
        httpx.get(f"{parsed.scheme}://{parsed.netloc}/", timeout=HTTP_TIMEOUT_S)
    except httpx.HTTPError as e:
        return Check("sentry", "fail", f"SENTRY_DSN is valid but {parsed.host} cannot be reached: "
                                       f"{type(e).__name__}: {redact(e)}")
    return Check("sentry", "ok", f"DSN valid, {parsed.host} reachable, project {parsed.project_id}, "
                                 f"environment {settings.environment}")


def check_heartbeat(settings: Settings) -> Check:
    if not settings.heartbeat_url:
        return Check("heartbeat", "warn", "HEARTBEAT_URL is not set: nothing outside notices if the daemon dies")
    return Check("heartbeat", "ok", f"HEARTBEAT_URL set ({mask_dsn(settings.heartbeat_url)}); "
                                    "pinged every minute by the heartbeat job")

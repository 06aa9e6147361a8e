"""`opsbench doctor`: check the configuration end to end and say what is wrong in plain words.

Each check returns a `Check` (ok / warn / fail, one line). Nothing here raises:
a check that cannot run is itself a failed check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
from sqlalchemy.pool import NullPool

import queries
from ops.core.redact import mask_url, redact
from ops.core.settings import Settings

if TYPE_CHECKING:
    from ops.daemon.jobspec import JobSpec

CONNECT_TIMEOUT_S = 5
HTTP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # ok | warn | fail
    message: str


def run_checks(settings: Settings) -> list[Check]:
    jobs_check, specs = _jobs(settings)
    checks = [jobs_check]
    unreachable = set()
    for role in ("analytics", "maintenance", "state"):
        found = database_checks(role, settings)
        if found and found[0].level == "fail" and "cannot" in found[0].message:
            unreachable.add(role)
        checks += found
    from ops.workbench.doctor_pooler import pooler_checks

    checks += pooler_checks(settings, skip=unreachable)
    checks += [check_check_files(settings), check_telegram(settings), check_sentry(settings),
               check_heartbeat(settings, specs), check_outbox_drain(specs), check_http_probes(specs),
               check_charts()]
    return checks


def check_charts() -> Check:
    """Will the digest's charts go as PNG photos? kaleido draws them in a headless Chrome/Chromium; without
    one they go as one HTML document, which is easy to miss on a server: say so here."""
    try:
        import kaleido  # noqa: F401 - the import is the check
    except ImportError:
        return Check("charts", "warn", "kaleido is not installed: the digest sends its charts as one HTML document, "
                                       "not PNG photos (pip install the versions in requirements.lock)")
    from ops.reports.charts import find_browser

    browser = find_browser()
    if browser is None:
        return Check("charts", "warn", "kaleido finds no Chrome/Chromium: the digest sends its charts as "
                                       "one HTML document, not PNG photos (apt install chromium, or set "
                                       "BROWSER_PATH to the browser)")
    return Check("charts", "ok", f"PNG charts: kaleido with {browser}")


def check_check_files(settings: Settings) -> Check:
    """The business checks: how many, from where, and every file that cannot run (named by file and line)."""
    from queries import checkfile

    try:
        cat = checkfile.discover(settings.checks_dir)
    except Exception as e:  # noqa: BLE001 - a broken shipped file is a bug, but doctor never raises
        return Check("checks", "fail", redact(e))
    shipped = sum(c.shipped for c in cat.checks.values())
    own = len(cat.checks) - shipped
    where = f"{own} of yours from {settings.checks_dir}" if settings.checks_dir else "OPSBENCH_CHECKS_DIR not set"
    if cat.problems:
        more = f" (and {len(cat.problems) - 1} more)" if len(cat.problems) > 1 else ""
        return Check("checks", "warn", f"{len(cat.problems)} broken check file(s): {cat.problems[0]}{more}; "
                                       "see `opsbench checks list`")
    return Check("checks", "ok", f"{shipped} shipped, {where}")


def _jobs(settings: Settings) -> tuple[Check, list[JobSpec] | None]:
    from ops.daemon.jobspec import jobs_file, load_jobs

    try:
        specs = load_jobs(settings)
    except Exception as e:
        return Check("jobs file", "fail", str(e)), None
    enabled = sum(s.enabled for s in specs)
    return Check("jobs file", "ok", f"{len(specs)} job(s), {enabled} enabled, from {jobs_file(settings)}"), specs


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


def _ident(name: str) -> str:
    """A role or table name as it must be written in a GRANT statement."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def _names(tables: list[str]) -> str:
    return ", ".join(tables)


def database_checks(role: str, settings: Settings) -> list[Check]:
    """Connect as `role`: the connection line, then what that role must be allowed to do."""
    from ops.data import db

    name = f"{role} database"
    try:
        resolved = db.resolve(role, settings)
    except Exception as e:
        return [Check(name, "fail", f"cannot start the embedded database: {redact(e)}")]
    where = resolved.masked() + (" (embedded)" if resolved.embedded else "")
    sql = queries.load("state/daemon")
    tools = queries.load("tools/doctor")
    engine = None
    grants = visibility = columns = writes = rows_seen = None
    try:
        engine = db.make_engine(role, settings, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}, poolclass=NullPool)
        with engine.connect() as conn:
            info = sql.session_info.execute(conn).one()
            privileges = sql.state_privileges.execute(conn).one() if role == "state" else None
            if role == "analytics":
                grants = tools.analytics_privileges.execute(conn).mappings().all()
                visibility = queries.load("probes").stats_visibility.execute(conn).mappings().one()
                columns = tools.analytics_columns.execute(conn).mappings().all()
                writes = tools.analytics_write_access.execute(conn).mappings().one()
            elif role == "maintenance":
                grants = tools.maintenance_privileges.execute(conn).mappings().all()
            rows_seen = _row_visibility(conn, role)
    except Exception as e:
        return [Check(name, "fail", f"cannot connect to {where}: {_connect_problem(e)}")]
    finally:
        if engine is not None:
            engine.dispose()

    who = f"connected as {info.usr} to {info.db} (PostgreSQL {info.server_version})"
    if role == "analytics":
        assert grants is not None and visibility is not None and columns is not None and writes is not None
        if info.read_only != "on":
            first = Check(name, "fail", f"{who}, but the session is not read-only")
        else:
            first = Check(name, "ok", f"{who}; read-only session, statement_timeout {info.statement_timeout}")
        return [first, _analytics_grants(info.usr, grants, rows_seen), _analytics_columns(columns),
                _analytics_writes(info.usr, writes, resolved.embedded), _probe_visibility(info.usr, visibility),
                _rows_check("row visibility", rows_seen, "analytics")]
    if role == "maintenance":
        assert grants is not None
        shared = _lacks_grants(grants) and _is_analytics_role(info.usr, resolved.dsn, settings)
        return [Check(name, "ok", f"{who}; lock_timeout {info.lock_timeout}, statement_timeout {info.statement_timeout}"),
                _maintenance_grants(info.usr, grants, shared=shared, verdict=rows_seen),
                _rows_check("cleanup row visibility", rows_seen, "cleanup")]
    assert privileges is not None
    if privileges.schema_exists and privileges.can_write_schema:
        return [Check(name, "ok", f"{who}; may write schema opsbench")]
    if not privileges.schema_exists and privileges.can_create_schema:
        return [Check(name, "ok", f"{who}; schema opsbench will be created on first start")]
    if _is_analytics_role(info.usr, resolved.dsn, settings):  # the read-only role: never a write privilege
        return [Check(name, "fail", f"{who}, but that is the analytics role, which may not create tables in schema "
                                    "opsbench and should stay read-only: point OPSBENCH_STATE_URL at a role of its "
                                    "own that owns schema opsbench (deploy/roles.sql creates opsbench_state)")]
    return [Check(name, "fail", f"{who}, but {info.usr} may not create tables in schema opsbench "
                                f"(GRANT CREATE ON DATABASE {info.db} TO {info.usr}, or make it the schema owner)")]


def _row_visibility(conn, role: str):
    """What the role sees of its tables (ops/data/visibility.py), or the error that kept doctor from knowing."""
    from ops.data import visibility

    tables = visibility.TABLES.get(role)
    if tables is None:
        return None
    try:
        return visibility.verdict(conn, tables)
    except Exception as e:  # noqa: BLE001 - reported as a failed check: never "all clear" on top of it
        return e


def _rows_check(name: str, seen, label: str) -> Check:
    """Row level security, per ops/workbench/doctor_rls.py; a check that could not run is a failure."""
    from ops.workbench import doctor_rls

    if isinstance(seen, BaseException):
        return Check(name, "fail", f"cannot tell which rows the {label} role sees: {_connect_problem(seen)}")
    level, message = doctor_rls.row_visibility(seen, label)
    return Check(name, level, message)


def _analytics_grants(user: str, rows, seen=None) -> Check:
    name = "query privileges"
    missing = [r["table_name"] for r in rows if not r["table_exists"]]
    denied = [r["table_name"] for r in rows if r["table_exists"] and not r["can_select"]]
    problems = []
    if missing:
        problems.append(f"table(s) {_names(missing)} not found on {user}'s search_path (wrong database, "
                        "or the backend names them differently: see README, A backend with other names)")
    if denied:
        problems.append(f"{user} may not SELECT from {_names(denied)}: the queries, notebooks and reports "
                        f"that read them fail ({_grant_advice(_ident(user), denied, seen)})")
    if problems:
        return Check(name, "fail", "; ".join(problems))
    return Check(name, "ok", f"{user} may SELECT from every table the queries read ({len(rows)} tables)")


def _analytics_user(settings: Settings) -> str | None:
    """The role the analytics session runs as (its current_user: the DSN may name no user, when PGUSER
    or peer authentication chooses it); None when that session cannot be opened."""
    from ops.data import db

    engine = None
    try:
        engine = db.make_engine("analytics", settings, connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
                                poolclass=NullPool)
        with engine.connect() as conn:
            return str(queries.load("tools/doctor").session_role.execute(conn).scalar_one())
    except Exception:
        return None
    finally:
        if engine is not None:
            engine.dispose()


def _is_analytics_role(user: str, dsn: str, settings: Settings) -> bool:
    """Whether a connection as `user` (over `dsn`) is the analytics role, which must never be advised a
    write privilege. Asked only when advice is due (it opens the analytics session once more); when
    that session cannot be opened, the same DSN as DATABASE_URL counts as the analytics role."""
    analytics = _analytics_user(settings)
    if analytics is not None:
        return user == analytics
    return dsn == settings.database_url


def _lacks_grants(rows) -> bool:
    """Whether cleanup's privilege rows call for a GRANT (a table that is there, a privilege lacking)."""
    return any(r["table_exists"] and (not r["can_select"] or (r["needs_delete"] and not r["can_delete"]))
               for r in rows)


def _analytics_columns(rows) -> Check:
    name = "query columns"
    missing = [f"{r['table_name']}.{r['column_name']} ({r['expected_type']})" for r in rows if r["actual_type"] is None]
    wrong = [f"{r['table_name']}.{r['column_name']} is {r['actual_type']}, expected {r['expected_type']}"
             for r in rows if r["actual_type"] is not None and r["actual_type"] != r["expected_type"]]
    problems = []
    if missing:
        problems.append(f"column(s) missing: {_names(missing)}")
    if wrong:
        problems.append(f"wrong type: {_names(wrong)}")
    if problems:
        return Check(name, "fail", "; ".join(problems) + " (the queries that read them fail or miscount: rename or "
                                   "cast them in a view, see deploy/compat_views.sql)")
    tables = len({r["table_name"] for r in rows})
    return Check(name, "ok", f"every column the queries expect is there with its type ({len(rows)} columns "
                             f"in {tables} tables)")


def _analytics_writes(user: str, row, embedded: bool) -> Check:
    name = "read-only role"
    writable = list(row["writable"] or [])
    if row["is_superuser"]:
        if embedded:
            return Check(name, "ok", f"{user} is the embedded demo server's superuser (the session is read-only)")
        return Check(name, "warn", f"{user} is a superuser: only the read-only session keeps queries and notebooks "
                                   "from writing to production; give DATABASE_URL a role with SELECT only "
                                   "(deploy/roles.sql creates opsbench_ro)")
    if writable:
        shown = _names(writable[:5]) + (f" and {len(writable) - 5} more" if len(writable) > 5 else "")
        return Check(name, "warn", f"{user} may INSERT, UPDATE, DELETE or TRUNCATE {shown}: only the read-only "
                                   f"session keeps it from writing (REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON "
                                   f"{_names(writable)} FROM {_ident(user)})")
    return Check(name, "ok", f"{user} is no superuser and may not write to any table")


def _grant_advice(user: str, tables: list[str], seen, privilege: str = "SELECT") -> str:
    from ops.workbench import doctor_rls

    return doctor_rls.grant_advice(user, tables, None if isinstance(seen, BaseException) else seen, privilege)


def _maintenance_grants(user: str, rows, shared: bool = False, verdict=None) -> Check:
    """`shared`: the maintenance DSN connects as the analytics role (MAINTENANCE_DATABASE_URL unset or the
    same user), which must stay read-only, so the advice is a role of its own, never a write GRANT."""
    name = "cleanup privileges"
    missing = [r["table_name"] for r in rows if not r["table_exists"]]
    no_delete = [r["table_name"] for r in rows if r["table_exists"] and r["needs_delete"]
                 and not (r["can_delete"] and r["can_select"])]
    no_select = [r["table_name"] for r in rows if r["table_exists"] and not r["needs_delete"] and not r["can_select"]]
    problems = []
    if missing:
        problems.append(f"table(s) {_names(missing)} not found on {user}'s search_path")
    if shared and (no_delete or no_select):
        needs = _names(no_delete or no_select)
        problems.append(f"cleanup connects as the analytics role {user}, which may not delete from {needs} and "
                        "should stay read-only: set MAINTENANCE_DATABASE_URL to a role of its own with SELECT, "
                        "DELETE on rate_limit_log, idempotency_keys, error_log and SELECT on video_jobs "
                        "(deploy/roles.sql creates opsbench_maint)")
        no_delete = no_select = []
    if no_delete:
        problems.append(f"{user} may not SELECT and DELETE on {_names(no_delete)}: the cleanup job fails on "
                        f"them every run ({_grant_advice(_ident(user), no_delete, verdict, 'SELECT, DELETE')})")
    if no_select:
        problems.append(f"{user} may not SELECT from {_names(no_select)}: cleanup cannot report stuck jobs "
                        f"({_grant_advice(_ident(user), no_select, verdict)})")
    if problems:
        return Check(name, "fail", "; ".join(problems))
    deletes = [r["table_name"] for r in rows if r["needs_delete"]]
    return Check(name, "ok", f"{user} may DELETE from {_names(deletes)} (cleanup) and read video_jobs")


def _probe_visibility(user: str, row) -> Check:
    name = "probe visibility"
    if row["reads_all_stats"]:
        return Check(name, "ok", f"{user} can read every session in pg_stat_activity (pg_read_all_stats): "
                                 "the postgres probe sees other roles' long queries and idle transactions")
    hidden = int(row["hidden_sessions"])
    now = f"; {hidden} session(s) are hidden from it right now" if hidden else ""
    return Check(name, "warn", f"{user} lacks pg_monitor, so the postgres probe cannot see other roles' long "
                               f"queries or idle-in-transaction sessions{now} (GRANT pg_monitor TO {_ident(user)})")


def check_telegram(settings: Settings) -> Check:
    token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
    if not token:
        return Check("telegram", "warn", "TELEGRAM_BOT_TOKEN is not set: alerts are printed to the console, "
                                         "nobody gets a Telegram message")
    if not settings.telegram_chat_id:
        return Check("telegram", "fail", "TELEGRAM_CHAT_ID is not set: the bot has no chat to send alerts to")
    from ops.alerting.telegram.client import TelegramClient

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
    where = f"bot @{username or '?'} answers getMe; alerts go to chat {settings.telegram_chat_id}"
    if settings.telegram_poll and not settings.admin_ids:
        return Check("telegram", "warn", f"{where}; TELEGRAM_ADMIN_IDS is not set, so the alert buttons and "
                                         "commands can only read (`opsbench telegram setup` prints the ids)")
    return Check("telegram", "ok", where)


def check_sentry(settings: Settings) -> Check:
    from sentry_sdk.utils import Dsn

    from ops.core.sentry import dsn_problem

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


def _essential(specs: list[JobSpec], target: str) -> tuple[JobSpec | None, str | None]:
    """The enabled job running `target`, or the plain-words problem when there is none."""
    from ops.daemon.jobspec import essential_job_problems

    job = next((s for s in specs if s.callable == target and s.enabled), None)
    if job is not None:
        return job, None
    problem = next(p for p in essential_job_problems(specs) if target in p)
    return None, problem


def check_heartbeat(settings: Settings, specs: list[JobSpec] | None = None) -> Check:
    from ops.daemon.jobspec import HEARTBEAT_CALLABLE, load_jobs

    if specs is None:
        try:
            specs = load_jobs(settings)
        except Exception:
            return Check("heartbeat", "warn", "cannot tell whether the daemon pings anything: the jobs file "
                                              "does not load (see the jobs file line)")
    job, problem = _essential(specs, HEARTBEAT_CALLABLE)
    url = settings.heartbeat_url
    if job is None:
        if url:
            problem += f"; HEARTBEAT_URL ({mask_url(url)}) is set but never pinged"
        return Check("heartbeat", "fail", f"{problem} (add a job with callable = \"{HEARTBEAT_CALLABLE}\", "
                                          "interval = \"1m\" as in the shipped jobs/jobs.toml)")
    when = job.schedule_words()
    if not url:
        return Check("heartbeat", "warn", "HEARTBEAT_URL is not set: nothing outside notices if the daemon dies "
                                          f"(job {job.id!r} runs {when} but has nowhere to ping)")
    return Check("heartbeat", "ok", f"HEARTBEAT_URL set ({mask_url(url)}); pinged {when} by job {job.id!r}")


def check_outbox_drain(specs: list[JobSpec] | None) -> Check:
    from ops.daemon.jobspec import DRAIN_OUTBOX_CALLABLE

    if specs is None:
        return Check("outbox drain", "warn", "cannot tell whether alerts are delivered: the jobs file does not load")
    job, problem = _essential(specs, DRAIN_OUTBOX_CALLABLE)
    if job is None:
        return Check("outbox drain", "fail", f"{problem} (add a job with callable = \"{DRAIN_OUTBOX_CALLABLE}\", "
                                             "interval = \"30s\" as in the shipped jobs/jobs.toml)")
    return Check("outbox drain", "ok", f"job {job.id!r} delivers queued alerts and reports {job.schedule_words()}")


def check_http_probes(specs: list[JobSpec] | None) -> Check:
    """The shipped http_probes job has no targets: without one, nobody probes the backend's /health."""
    name = "http probes"
    if specs is None:
        return Check(name, "warn", "cannot tell what is probed: the jobs file does not load")
    jobs = [s for s in specs if s.enabled and s.callable == "jobs.probes:http_probes"]
    targets = [t for s in jobs for t in (s.args.get("targets") or [])]
    if not targets:
        urls = "OPSBENCH_HEALTH_URLS=api=https://…/health"
        if jobs:
            return Check(name, "warn", f"job {jobs[0].id!r} has no HTTP targets: nothing checks the backend's "
                                       f"health endpoint (set {urls}, comma-separated for more, or list them under "
                                       "[[jobs.http_probes.args.targets]] in an override file headed "
                                       "extends = \"defaults\" that OPSBENCH_JOBS_FILE names)")
        return Check(name, "warn", "no enabled job runs jobs.probes:http_probes, so there are no HTTP targets: "
                                   "nothing checks the backend's health endpoint (enable or add a job with "
                                   "callable = \"jobs.probes:http_probes\" in the file OPSBENCH_JOBS_FILE names, "
                                   f"then set {urls})")
    names = [str(t.get("name", "?")) if isinstance(t, dict) else "?" for t in targets]
    return Check(name, "ok", f"{len(targets)} HTTP target(s) probed: {_names(names)}")

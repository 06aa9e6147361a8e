"""`opsbench daemon | jobs | run JOB | status | doctor`."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys
from enum import Enum
from typing import Any

import typer

from ops.cli import fail
from ops.core.clock import utc_now


class Format(str, Enum):
    table = "table"
    json = "json"


INSTANCE_WINDOW = dt.timedelta(minutes=10)
STALE_AFTER = dt.timedelta(seconds=30)


def _iso(v: dt.datetime | None) -> str | None:
    return v.isoformat(timespec="seconds") if v else None


def _ago(v: dt.datetime | None, now: dt.datetime) -> str:
    if v is None:
        return "never"
    secs = int((now - v).total_seconds())
    if secs < 120:
        return f"{secs}s ago"
    if secs < 7200:
        return f"{secs // 60}m ago"
    if secs < 172800:
        return f"{secs // 3600}h ago"
    return f"{secs // 86400}d ago"


def _in(v: dt.datetime | None, now: dt.datetime) -> str:
    """A future time relative to now: 'in 13 h', 'in 5 min', 'due now'."""
    if v is None:
        return "-"
    secs = int((v - now).total_seconds())
    if secs < 60:
        return "due now" if secs <= 0 else f"in {secs} s"
    if secs < 5400:
        return f"in {round(secs / 60)} min"
    if secs < 172800:
        return f"in {round(secs / 3600)} h"
    return f"in {round(secs / 86400)} d"


def result_word(status: str | None, findings: int | None) -> tuple[str, str]:
    """(words, rich style) for a job's last result: a run that found problems never reads as plain 'ok'."""
    if status is None:
        return "never run", "dim"
    n = findings or 0
    found = f", {n} finding{'s' if n != 1 else ''}" if n else ""
    if status == "ok":
        return (f"ok{found}", "yellow") if n else ("ok", "green")
    if status == "skipped":
        return f"skipped{found}", "dim"
    return f"{status}{found}", "bold red"


def _state_engine(settings, *, migrate: bool = True):
    from ops.data.state import state_engine

    return state_engine(settings, migrated=migrate)


def _sql():
    import queries

    return queries.load("state/daemon")


# -- daemon ---------------------------------------------------------------------

def daemon(
    grace: float = typer.Option(30.0, "--grace", min=0, help="seconds to wait for running jobs when stopping"),
) -> None:
    """Run the scheduler in the foreground (for systemd or a terminal); SIGTERM stops it cleanly."""
    from ops.core import logs, sentry
    from ops.core.settings import get_settings
    from ops.daemon.jobspec import load_enabled
    from ops.daemon.scheduler import Daemon

    settings = get_settings()
    logs.configure(json_lines=None, settings=settings)  # OPSBENCH_LOG_LEVEL, journal priorities under systemd
    specs = load_enabled(settings)          # a bad jobs file stops us here, naming job and key
    sentry.init(settings)                   # off and silent without SENTRY_DSN
    def reread() -> dict:
        # the jobs file and OPSBENCH_HEALTH_URLS (from .env too) as they are now; the connections stay
        from ops.core.settings import load_settings

        fresh = load_settings()
        return load_enabled(settings.model_copy(update={"jobs_file": fresh.jobs_file,
                                                        "health_urls": fresh.health_urls}))

    d = Daemon(settings, specs, shutdown_grace_s=grace, load_specs=reread)
    d.install_signal_handlers()
    code = d.run()
    stuck = d.runner.running_jobs()
    sentry.close()
    if stuck:
        # abandoned job threads cannot be joined; don't let them hold the exit
        logging.getLogger("opsbench.daemon").warning("exiting with abandoned job threads: %s", ", ".join(stuck))
        logging.shutdown()
        os._exit(code)
    raise typer.Exit(code)


# -- jobs -------------------------------------------------------------------------

def _last_runs(settings) -> tuple[dict[str, Any], str | None]:
    try:
        engine = _state_engine(settings)
        with engine.connect() as conn:
            rows = _sql().last_runs.execute(conn).fetchall()
        return {r.job: r for r in rows}, None
    except Exception as e:
        from ops.core.redact import redact

        return {}, f"state database unavailable, last results unknown: {redact(e).splitlines()[0]}"


def jobs_rows(settings, now: dt.datetime | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Every declared job with its schedule in words, next fire time and last result."""
    from ops.daemon.jobspec import load_jobs

    now = now or utc_now()
    specs = load_jobs(settings)
    last, warning = _last_runs(settings)
    out = []
    for spec in specs:
        run = last.get(spec.id)
        next_run = None
        if spec.enabled:
            if spec.cron is None and run is not None:
                # interval jobs count from their last run; an overdue one is due now
                next_run = max(run.started_at + dt.timedelta(seconds=spec.interval_s or 0), now)
            else:
                next_run = spec.next_run(now.astimezone(spec.tz))
        out.append({
            "id": spec.id,
            "enabled": spec.enabled,
            "schedule": spec.schedule_words(),
            "next_run": _iso(next_run),
            "last_status": run.status if run else None,
            "last_findings": int(run.findings or 0) if run else None,
            "last_run": _iso(run.started_at) if run else None,
            "last_duration_s": round(run.duration_s, 3) if run and run.duration_s is not None else None,
            "last_summary": run.summary if run else None,
            "timeout_s": spec.timeout_s,
            "catch_up": spec.catch_up,
            "callable": spec.callable,
        })
    return out, warning


def jobs(fmt: Format = typer.Option(Format.table, "--format", "-f"),
         explain: bool = typer.Option(False, "--explain", help="every job value and where it came from "
                                      "(default / override file / env)")) -> None:
    """Every job: schedule in words, next fire time, last result."""
    from ops.core.settings import get_settings

    if explain:
        _explain(get_settings(), fmt)
        return
    rows, warning = jobs_rows(get_settings())
    if warning:
        typer.echo(f"opsbench: warning: {warning}", err=True)
    if fmt is Format.json:
        typer.echo(json.dumps(rows, indent=2))
        return
    from ops.cli.tables import Col, print_table

    now = utc_now()
    cols = [Col("job", "name", 0), Col("next run", "fixed", 1), Col("last result", "fixed", 1),
            Col("schedule", "fixed", 2), Col("when", "fixed", 3), Col("summary", "text", 4)]
    table = []
    for r in rows:
        words, _ = result_word(r["last_status"], r["last_findings"])
        if warning and r["last_status"] is None:
            words = "unknown"  # the history could not be read, not "never run"
        table.append([r["id"] + ("" if r["enabled"] else " (disabled)"),
                      _in(dt.datetime.fromisoformat(r["next_run"]), now) if r["next_run"] else "-",
                      words, r["schedule"],
                      _ago(dt.datetime.fromisoformat(r["last_run"]), now) if r["last_run"] else "-",
                      r["last_summary"] or ""])
    print_table(cols, table)


def _explain(settings, fmt: Format) -> None:
    from ops.core.redact import redact
    from ops.daemon.jobspec import explain, jobs_file, load_jobs

    load_jobs(settings)                      # a bad file is reported as usual, naming job and key
    rows = [{"job": j, "key": k, "value": redact(json.dumps(v, default=str)), "origin": o}
            for j, k, v, o in explain(settings)]
    if fmt is Format.json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"jobs file: {jobs_file(settings)}")
    from ops.cli.tables import Col, print_table

    print_table([Col("job", "name", 0), Col("key", "name", 0), Col("from", "fixed", 1), Col("value", "text", 2)],
                [[r["job"], r["key"], r["origin"], r["value"]] for r in rows])


# -- run ----------------------------------------------------------------------------

def run(
    job: str = typer.Argument(..., help="job id, see `opsbench jobs`"),
    dry_run: bool = typer.Option(False, "--dry-run", help="run without recording, alerting or changing data"),
) -> None:
    """Run one job now, in this process (recorded in the job history unless --dry-run)."""
    from ops.core import logs, sentry
    from ops.core.settings import get_settings
    from ops.daemon.jobspec import load_jobs
    from ops.daemon.runner import Runner

    settings = get_settings()
    specs = {s.id: s for s in load_jobs(settings)}
    if job not in specs:
        fail(f"unknown job {job!r} (jobs: {', '.join(specs) or 'none'})")
    # a person is watching: each exception a job logs is one line, the traceback goes to Sentry
    logs.configure(level=logging.WARNING, json_lines=None, environment=settings.environment, stream=sys.stderr,
                   tracebacks=False)
    # the run's outcome is printed below (a failure as one line); the runner's own log lines would repeat it
    runner_log = logging.getLogger("opsbench.runner")
    runner_level = runner_log.level
    runner_log.setLevel(logging.CRITICAL)
    sentry.init(settings)
    try:
        engine = _state_engine(settings, migrate=not dry_run)
        record = Runner(settings, specs, state_engine=engine).run(job, trigger="manual", dry_run=dry_run)
    finally:
        runner_log.setLevel(runner_level)   # `main()` called again in one process (tests, scripts)
        sentry.close()
    assert record is not None
    label = " (dry run)" if dry_run else ""
    if record.status in ("failed", "timeout"):
        # one line, as every other CLI error: what failed and why, no exception class, no SQL, no URL
        why = error_line(record.error) if record.error else record.summary
        typer.echo(f"opsbench: error: {job} {record.status} after {record.duration_s:.2f}s{label}: {why}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{job}: {record.status} in {record.duration_s:.2f}s{label}: {record.summary}")
    if record.error and record.error != record.summary:
        typer.echo(f"  error: {record.error}")
    for key, value in sorted(record.metrics.items()):
        typer.echo(f"  {key} = {value:g}" if isinstance(value, (int, float)) else f"  {key} = {value}")
    for f in record.findings:
        typer.echo(f"  [{f.severity.value}] {f.key}: {f.summary}")
    if record.not_run:
        # a part that could not run (a reconcile check that errored) vouches for nothing: not a pass
        typer.echo(f"opsbench: error: {job}: could not run {', '.join(record.not_run)}", err=True)
        raise typer.Exit(1)


_EXC_PREFIX = re.compile(r"^(?:(?:[a-z_]\w*\.)+[A-Z]\w*|[A-Z]\w*(?:Error|Exception|Warning)): ")
_DRIVER_PREFIX = re.compile(r"^\((?:psycopg|sqlalchemy)[\w.]*\) ")


def error_line(error: str) -> str:
    """The first line of a job's error without the exception class, the driver's prefix or a docs URL."""
    line = next((ln.strip() for ln in error.splitlines() if ln.strip()), error.strip())
    line = _EXC_PREFIX.sub("", line, count=1)
    line = _DRIVER_PREFIX.sub("", line, count=1)
    return re.sub(r"\s*\(Background on this error at: [^)]*\)", "", line).strip() or "the job failed"


# -- status --------------------------------------------------------------------------

def _alert_count(rows: list) -> dict[str, Any]:
    from ops.alerting import tally

    count = tally.tally(rows)
    return {"open": count.open, "critical": count.critical, "warning": count.warning, "notes": len(count.notes),
            "echoes": count.echoes, "headline": count.headline(), "echo_sentence": count.echo_sentence()}


def status_data(settings, now: dt.datetime | None = None) -> dict[str, Any]:
    from ops.alerting import bridge as alert_bridge
    from ops.alerting import tally

    now = now or utc_now()
    engine = _state_engine(settings)
    with engine.connect() as conn:
        instances = _sql().instances.execute(conn, since=now - INSTANCE_WINDOW).fetchall()
    firing = alert_bridge.firing(engine)
    data = {
        "instances": [{
            "instance": r.instance, "host": r.host, "pid": r.pid, "version": r.version,
            "is_leader": bool(r.is_leader) and r.stopped_at is None and now - r.last_seen < STALE_AFTER,
            "state": ("stopped" if r.stopped_at else "gone quiet" if now - r.last_seen >= STALE_AFTER
                      else "leader" if r.is_leader else "standby"),
            "leader_since": _iso(r.leader_since), "last_seen": _iso(r.last_seen),
            "last_seen_ago_s": round((now - r.last_seen).total_seconds(), 1),
        } for r in instances],
        "firing": None if firing is None else [_alert_text(a) for a in firing],
        # the one count (ops.alerting.tally): echoes folded into their root, info alerts as notes
        "alerts": None if firing is None else _alert_count(firing),
        "firing_critical": None if firing is None else tally.tally(firing).critical,
        "outbox_depth": alert_bridge.depth(engine),
        "delivery": _delivery(engine),
        "lock_holder": _lock_holder(engine),
    }
    data["problems"] = problems(data)
    data["healthy"] = not data["problems"]
    return data


def _lock_holder(engine) -> str | None:
    """Who holds the leader lock (pg_locks and pg_stat_activity), in words; None when nobody does or
    it cannot be read. A holder with no daemon leading is a session left behind (a pooler's)."""
    from ops.daemon.leader import holder

    try:
        with engine.connect() as conn:
            return holder(conn)
    except Exception:  # noqa: BLE001 - status still shows the rest
        return None


def problems(data: dict[str, Any]) -> list[str]:
    """Why `opsbench status` exits 1: no daemon leading, critical alerts firing, undeliverable messages."""
    out = []
    if not any(i["is_leader"] for i in data["instances"]):
        out.append("no daemon is leading")
    if data.get("firing_critical"):
        n = data["firing_critical"]
        out.append(f"{n} critical alert{'' if n == 1 else 's'} open")
    delivery = data.get("delivery") or {}
    if delivery.get("blocked"):
        out.append(f"{len(delivery['blocked'])} Telegram chat(s) refuse messages")
    if delivery.get("failed"):
        out.append(f"{delivery['failed']} message(s) undeliverable")
    return out


def _delivery(engine) -> dict[str, Any] | None:
    """Blocked chats and rejected messages (ops.alerting.outbox.delivery_problems), or None if unknown."""
    try:
        from ops.alerting import outbox

        p = outbox.delivery_problems(engine)
    except Exception:  # status still shows the rest when the outbox cannot be read
        return None
    return {
        "blocked": [{"chat": b.configured_chat_id, "chat_id": b.chat_id, "reason": b.blocked_reason,
                     "since": _iso(b.blocked_at), "last_try": _iso(b.blocked_checked_at)} for b in p.blocked],
        "failed": p.failed,
        "recent_failed": [{"id": f.id, "at": _iso(f.failed_at or f.created_at), "source": f.source,
                           "error": f.last_error} for f in p.recent_failed],
    }


def _alert_text(alert: Any) -> str:
    """One line for a firing alert (a row from ops.alerting.manager.firing, or a dict)."""
    get = alert.get if isinstance(alert, dict) else (lambda name, default="": getattr(alert, name, default))
    key, severity, summary = get("key", str(alert)), get("severity", ""), get("summary", "")
    return " ".join(part for part in (f"[{severity}]" if severity else "", f"{key}:" if summary else str(key),
                                      summary) if part)


def status(fmt: Format = typer.Option(Format.table, "--format", "-f")) -> None:
    """Which daemon leads, its last heartbeat, firing alerts and the outbox depth.

    Exit code: 0 healthy, 1 problems (no daemon leading, critical alerts firing,
    undeliverable messages), 2 usage or settings error.
    """
    import socket

    from ops.core.settings import get_settings

    from ops.cli.backend_binding import bind_backend

    try:
        settings = get_settings()
        bind_backend(settings, _state_engine(settings))   # no alert of a backend DATABASE_URL no longer names
        data = status_data(settings)
    except Exception as e:
        import sqlalchemy as sa

        from ops.core.redact import redact

        if not isinstance(e, sa.exc.SQLAlchemyError):
            raise
        # not a usage error: the state store being down is a problem a script acts on (exit 1)
        typer.echo(f"opsbench: error: state database unavailable: "
                   f"{redact(getattr(e, 'orig', None) or e).splitlines()[0]}", err=True)
        raise typer.Exit(1) from None
    if fmt is Format.json:
        typer.echo(json.dumps(data, indent=2))
        raise typer.Exit(1 if data["problems"] else 0)
    here = socket.gethostname()
    if not data["instances"]:
        typer.echo("daemon: none seen in the last 10 minutes (is `opsbench daemon` running?)")
    for i in data["instances"]:
        where = " (this machine)" if i["host"] == here else ""
        since = f", leading since {i['leader_since']}" if i["is_leader"] and i["leader_since"] else ""
        typer.echo(f"daemon {i['instance']}{where}: {i['state']}{since}, last heartbeat {i['last_seen_ago_s']:g}s ago")
    if data.get("lock_holder"):
        typer.echo(f"leader lock held by {data['lock_holder']}")
    if not any(i["is_leader"] for i in data["instances"]):
        held = " although the leader lock is held (see above: a session that outlived its daemon?)" \
            if data.get("lock_holder") else ""
        typer.echo(f"no daemon is leading: no jobs are running{held}")
    if data["firing"] is None:
        typer.echo("alerts: unknown (alert manager not available)")
    else:
        count = data["alerts"]
        typer.echo(f"alerts: {count['headline']}" + (f"; {count['echo_sentence']}" if count["echo_sentence"] else ""))
        for line in data["firing"]:
            typer.echo(f"  {line}")
    depth = data["outbox_depth"]
    typer.echo(f"outbox: {'unknown' if depth is None else depth} message(s) waiting")
    delivery = data.get("delivery") or {}
    now = utc_now()
    for b in delivery.get("blocked", []):
        since = dt.datetime.fromisoformat(b["since"])
        typer.echo(f"delivery BLOCKED: Telegram chat {b['chat']} refuses messages since {b['since']} "
                   f"({_ago(since, now)}): {b['reason']}; messages are held and retried (`opsbench alerts`)")
    if delivery.get("failed"):
        last = delivery["recent_failed"][0] if delivery["recent_failed"] else None
        detail = f" (last #{last['id']}: {last['error']})" if last else ""
        typer.echo(f"delivery FAILED: {delivery['failed']} message(s) rejected by Telegram for good{detail}")
    typer.echo("problems: " + "; ".join(data["problems"]) if data["problems"] else "healthy")
    raise typer.Exit(1 if data["problems"] else 0)


# -- doctor -----------------------------------------------------------------------------

def doctor(
    indexes: bool = typer.Option(False, "--indexes",
                                 help="only EXPLAIN every named query and print the CREATE INDEX statements missing"),
) -> None:
    """Check settings, jobs file, each database and its privileges, Telegram, Sentry; say what is wrong."""
    from ops.core.settings import SettingsError, get_settings
    from ops.workbench.doctor import Check, run_checks

    if indexes:
        _doctor_indexes()
        return

    try:
        settings = get_settings()
    except SettingsError as e:
        checks = [Check("settings", "fail", str(e))]
    else:
        checks = [Check("settings", "ok", f"environment {settings.environment}, REPORT_TZ {settings.report_tz}")]
        checks += run_checks(settings)
    for c in checks:
        typer.echo(f"{c.level.upper() if c.level != 'ok' else 'ok':<5} {c.name:<21} {c.message}")
    failed = [c for c in checks if c.level == "fail"]
    typer.echo(f"{len(failed)} problem(s) found" if failed else "no problems found")
    if failed:
        raise typer.Exit(1)


def _doctor_indexes() -> None:
    """`opsbench doctor --indexes`: the indexes the named queries need on the analytics database."""
    import sqlalchemy as sa

    from ops.core.settings import get_settings
    from ops.data import db
    from ops.workbench.index_doctor import check_indexes

    settings = get_settings()
    where = db.resolve("analytics", settings).masked()
    try:
        report = check_indexes(db.analytics(settings), today=utc_now().astimezone(settings.tz).date())
    except sa.exc.DBAPIError as e:
        fail(f"cannot read the plans from {where}: {str(e.orig or e).strip().splitlines()[0]}")
    for name, reason in report.failed:
        typer.echo(f"WARN  {name}: cannot EXPLAIN: {reason}")
    if report.all_clear:
        typer.echo(f"all clear: {report.explained} named queries explained against {where}; "
                   "no large table is read whole where an index would serve")
        return
    typer.echo(f"{len(report.suggestions)} missing index(es) on {where} "
               f"({report.explained} named queries explained); run:")
    for s in report.suggestions:
        typer.echo(f"\n-- {s.table} (~{s.table_rows:,} rows) is read whole by {', '.join(s.queries)} "
                   f"filtering on {', '.join(s.columns)}")
        typer.echo(s.statement)
    raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("daemon")(daemon)
    app.command("jobs")(jobs)
    app.command("run")(run)
    app.command("status")(status)
    app.command("doctor")(doctor)

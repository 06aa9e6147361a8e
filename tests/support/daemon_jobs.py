"""Job functions for the daemon tests: ok, raising, hanging, slow, and friends.

Referenced from test jobs files as "support.daemon_jobs:<name>" (tests/ is on sys.path).
"""

from __future__ import annotations

import threading
import time

from ops.contract import Finding, JobContext, JobResult, Severity

# A hanging job waits on this; tests set it at the end so no thread outlives them.
release = threading.Event()
# Every call of `counting` appends (job_id, run_id) here.
calls: list[tuple[str, str]] = []

FAKE_TOKEN = "bot123456789:AAHsecretTOKENvalue_0123456789abcdefXYZ"
FAKE_DB_PASSWORD = "hunter2-db-password"
FAKE_USER_ID = "3f2b9c1e-7a6d-4e5f-9b8a-0c1d2e3f4a5b"


def ok(ctx: JobContext) -> JobResult:
    return JobResult("ok", "all good", {"checked": 3.0}, rules={"example_rule"})


def counting(ctx: JobContext) -> JobResult:
    calls.append((ctx.job_id, ctx.run_id))
    return JobResult("ok", f"call {len(calls)}")


def with_finding(ctx: JobContext) -> JobResult:
    limit = float(ctx.args.get("limit", 1))
    return JobResult("ok", "one finding", {"value": limit + 1},
                     [Finding("too_high", Severity.critical, f"value above {limit:g}", labels={"probe": "x"})],
                     rules={"too_high"})


def reports_failure(ctx: JobContext) -> JobResult:
    return JobResult("failed", "backend unreachable")


def raising(ctx: JobContext) -> JobResult:
    token = FAKE_TOKEN  # a local variable Sentry would show in the stack frame
    dsn = f"postgresql://ops:{FAKE_DB_PASSWORD}@db.internal:5432/prod"
    ctx.logger.info("about to call %s with %s", dsn, token)
    raise RuntimeError(f"boom while calling https://api.telegram.org/{token}/getMe via {dsn}")


def raising_with_settings_secrets(ctx: JobContext) -> JobResult:
    """Raises with every secret of the settings in its locals, bare (not in a shape a regex knows)."""
    from sqlalchemy.engine import make_url

    s = ctx.settings
    heartbeat = s.heartbeat_url
    ping_id = heartbeat.rsplit("/", 1)[-1] if heartbeat else None
    token = s.telegram_bot_token.get_secret_value() if s.telegram_bot_token else None
    passwords = [make_url(u).password for u in (s.database_url, s.maintenance_database_url, s.state_url) if u]
    sentry_dsn = s.sentry_dsn.get_secret_value() if s.sentry_dsn else None
    ctx.logger.info("pinging %s with id %s", heartbeat, ping_id)
    raise RuntimeError(f"failed: ping {ping_id} token {token} passwords {passwords} sentry {sentry_dsn}")


def hanging(ctx: JobContext) -> JobResult:
    release.wait(30)
    return JobResult("ok", "released")


def slow(ctx: JobContext) -> JobResult:
    time.sleep(float(ctx.args.get("seconds", 0.3)))
    return JobResult("ok", "slept")


def returns_nothing(ctx: JobContext):
    return None


def writes_ignoring_dry_run(ctx: JobContext) -> JobResult:
    """A careless job: writes to the state store and the backend without looking at ctx.dry_run."""
    with ctx.state.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS opsbench.careless_writes (at timestamptz)")
        conn.exec_driver_sql("INSERT INTO opsbench.careless_writes VALUES (now())")
    return JobResult("ok", "wrote one row")


def flag_check(ctx: JobContext) -> JobResult:
    """A check whose fault is a file: it exists -> one critical finding `flag_up`; gone -> fine."""
    from pathlib import Path

    if Path(ctx.args["flag_file"]).exists():
        return JobResult("ok", "flag up", findings=[Finding("flag_up", Severity.critical, "the flag is up",
                                                            evidence=[{"flag": "up"}], evidence_count=1)],
                         rules={"flag_up"})
    return JobResult("ok", "flag down", rules={"flag_up"})


def fake_digest(ctx: JobContext) -> JobResult:
    """Stands in for the daily digest (which needs a backend): queues one recognisable message."""
    from ops.alerting import outbox

    with ctx.state.begin() as conn:
        outbox.enqueue(conn, f"📊 digest stand-in ({ctx.job_id})", source=ctx.job_id, now=ctx.now())
    return JobResult("ok", "digest queued")


def waits_for_file(ctx: JobContext) -> JobResult:
    """Runs until the file `args.path` exists (a test creates it when the run may end), at most `args.limit_s`."""
    from pathlib import Path

    path, deadline = Path(ctx.args["path"]), time.monotonic() + float(ctx.args.get("limit_s", 60))
    while not path.exists():
        if time.monotonic() > deadline:
            return JobResult("failed", f"{path} never appeared")
        time.sleep(0.05)
    return JobResult("ok", "released by the file")

"""Safe cleanup of the backend's expiring rows (the seeds' maintenance list).

`rate_limit_log` older than 7 days, expired `idempotency_keys`, and `error_log`
older than a retention (default 90 days) - through the MAINTENANCE connection
only, in batches by primary key, each batch its own short transaction with
lock_timeout and statement_timeout set, with a cap on rows per run.

Safety rails, in the order they apply:
  * the guard: when the rows a run would remove are an implausible share of
    the table (a wrong clock, a wrong retention), it deletes nothing and raises
    a `cleanup_refused` finding instead;
  * dry run (`ctx.dry_run`): counts and reports, changes nothing;
  * a lock held elsewhere ends the run for that table after lock_timeout with
    what was already committed kept: a failed, partial result, never a hang.

Stuck video jobs are reported with their ids in the summary, never changed.
Every table's outcome is stored in `opsbench.cleanup_runs`.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

import queries
from jobs.base import Finding, JobContext, JobResult, Severity
from jobs.probes import record_state
from ops.redact import redact

REFUSED = "cleanup_refused"

# PostgreSQL error codes that end a batch cleanly: lock_timeout, statement_timeout.
_LOCK_NOT_AVAILABLE = "55P03"
_QUERY_CANCELED = "57014"


class CleanupArgError(ValueError):
    """An argument in the jobs file is unusable. str() names the key."""


@dataclass(frozen=True)
class Target:
    table: str
    column: str          # the timestamp the age is judged on
    retention_arg: str   # args key holding the retention
    default_retention: dt.timedelta
    default_max_share: float  # the guard's limit for this table

    def cutoff(self, now: dt.datetime, args: dict[str, Any]) -> dt.datetime:
        return now - _duration(args, self.retention_arg, self.default_retention)


TARGETS: dict[str, Target] = {
    # 7-day retention; with a nightly run about 1/8 of the table is eligible, and
    # after a week of stalled runs about half
    "rate_limit_log": Target("rate_limit_log", "created_at", "rate_limit_retention", dt.timedelta(days=7), 0.6),
    # 24 h keys: with the seeds' weekly cleanup most of the table is expired by
    # design, so only "everything" is implausible here
    "idempotency_keys": Target("idempotency_keys", "expires_at", "idempotency_grace", dt.timedelta(0), 0.95),
    "error_log": Target("error_log", "created_at", "error_log_retention", dt.timedelta(days=90), 0.5),
}


def _duration(args: dict[str, Any], key: str, default: dt.timedelta) -> dt.timedelta:
    if key not in args:
        return default
    value = args[key]
    try:
        out = (pd.Timedelta(days=value) if isinstance(value, (int, float)) and not isinstance(value, bool)
               else pd.Timedelta(str(value))).to_pytimedelta()
    except (TypeError, ValueError):
        raise CleanupArgError(f"args.{key}: expected days or a duration such as 7D or 36h, got {str(value)[:40]!r}") from None
    if out < dt.timedelta(0):
        raise CleanupArgError(f"args.{key}: expected a duration that is not negative")
    return out


def _int(args: dict[str, Any], key: str, default: int, minimum: int = 1) -> int:
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise CleanupArgError(f"args.{key}: expected an integer")
    try:
        out = int(value)
    except ValueError:
        raise CleanupArgError(f"args.{key}: expected an integer, got {str(value)[:40]!r}") from None
    if out < minimum:
        raise CleanupArgError(f"args.{key}: expected at least {minimum}")
    return out


def _max_share(args: dict[str, Any], target: Target) -> float:
    value = args.get("max_share", target.default_max_share)
    if isinstance(value, dict):
        value = value.get(target.table, target.default_max_share)
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise CleanupArgError("args.max_share: expected a share between 0 and 1, or a table of them by table name") from None
    if not 0.0 < out <= 1.0:
        raise CleanupArgError("args.max_share: expected a share between 0 and 1")
    return out


@dataclass
class TableOutcome:
    table: str
    cutoff: dt.datetime
    eligible: int
    table_rows: int
    deleted: int = 0
    batches: int = 0
    outcome: str = "done"  # done | capped | dry_run | refused | failed
    note: str = ""

    @property
    def share(self) -> float:
        return self.eligible / self.table_rows if self.table_rows else 0.0


def _delete_batches(ctx: JobContext, target: Target, out: TableOutcome, batch_size: int, cap: int,
                    timeouts: dict[str, str], pause_s: float) -> None:
    q = queries.load("maintenance/cleanup")
    delete = getattr(q, f"{target.table}_delete_batch")
    engine = ctx.maintenance
    while out.deleted < cap:
        n = min(batch_size, cap - out.deleted)
        try:
            with engine.begin() as conn:  # one short transaction per batch
                q.set_timeouts.execute(conn, **timeouts)
                removed = delete.execute(conn, cutoff=out.cutoff, batch_size=n).rowcount
        except sa.exc.DBAPIError as exc:
            code = getattr(getattr(exc, "orig", None), "sqlstate", None)
            if code == _LOCK_NOT_AVAILABLE:
                out.note = f"a row lock held elsewhere outlasted lock_timeout ({timeouts['lock_timeout']})"
            elif code == _QUERY_CANCELED:
                out.note = f"a batch outlasted statement_timeout ({timeouts['statement_timeout']})"
            else:
                out.note = redact(getattr(exc, "orig", exc)).strip().splitlines()[0][:300]
            out.outcome = "failed"
            return
        if removed <= 0:
            break
        out.deleted += removed
        out.batches += 1
        if removed < n:
            break  # nothing eligible is left
        if pause_s:
            time.sleep(pause_s)  # room for the backend's own writes between batches
    if out.deleted >= cap and out.deleted < out.eligible:
        out.outcome = "capped"
        out.note = f"stopped at the cap of {cap} rows; the rest goes next run"


def _stuck_jobs(ctx: JobContext, conn: sa.Connection) -> pd.DataFrame:
    older = _duration(ctx.args, "stuck_after", dt.timedelta(minutes=30))
    return queries.load("metrics").stuck_jobs(conn, older_than=older, now=ctx.now())


def cleanup(ctx: JobContext) -> JobResult:
    """Job: delete expired backend rows safely.

    args: tables (all three), rate_limit_retention (7 days), error_log_retention
    (90 days), idempotency_grace (0), batch_size (1000), max_rows (50000 per
    table per run), max_share (per-table defaults; a number or a table by
    name), guard_min_rows (100: below this many rows the guard stays quiet),
    lock_timeout_ms (2000), statement_timeout_ms (30000), pause_s (0),
    stuck_after (30min). Honors ctx.dry_run.
    """
    a = ctx.args
    names = a.get("tables", list(TARGETS))
    if not isinstance(names, list) or any(n not in TARGETS for n in names):
        raise CleanupArgError(f"args.tables: expected a list drawn from {', '.join(TARGETS)}")
    batch_size = _int(a, "batch_size", 1000)
    cap = _int(a, "max_rows", 50_000)
    guard_min = _int(a, "guard_min_rows", 100, minimum=0)
    timeouts = {"lock_timeout": f"{_int(a, 'lock_timeout_ms', 2000)}ms",
                "statement_timeout": f"{_int(a, 'statement_timeout_ms', 30_000)}ms"}
    pause_s = float(a.get("pause_s", 0) or 0)
    now = ctx.now()
    q = queries.load("maintenance/cleanup")

    outcomes: list[TableOutcome] = []
    findings: list[Finding] = []
    with ctx.maintenance.connect() as conn:
        plans = []
        for name in names:
            t = TARGETS[name]
            cutoff = t.cutoff(now, a)
            q.set_timeouts.execute(conn, **timeouts)
            eligible = int(getattr(q, f"{name}_eligible").execute(conn, cutoff=cutoff).mappings().one()["eligible"])
            rows = int(getattr(q, f"{name}_rows").execute(conn).scalar_one())
            conn.rollback()  # end the read transaction: no snapshot held while deleting
            plans.append((t, TableOutcome(name, cutoff, eligible, rows)))
        stuck = _stuck_jobs(ctx, conn)

    for t, out in plans:
        limit = _max_share(a, t)
        if out.eligible > guard_min and out.share > limit:
            out.outcome = "refused"
            out.note = f"{out.eligible} of {out.table_rows} rows ({out.share:.0%}) is above the limit of {limit:.0%}"
            findings.append(Finding(
                rule=REFUSED, severity=Severity.warning, labels={"table": t.table},
                summary=f"cleanup of {t.table} refused: it would delete {out.share:.0%} of the table "
                        f"({out.eligible} of {out.table_rows} rows, limit {limit:.0%})",
                details=(f"rows with {t.column} before {out.cutoff.isoformat()}. If that is right, raise "
                         f"args.max_share for {t.table} in the jobs file; if not, check the clock and the retention."),
                evidence=[{"table": t.table, "cutoff": out.cutoff.isoformat(), "eligible": out.eligible,
                           "table_rows": out.table_rows, "share": round(out.share, 4), "max_share": limit}],
                evidence_count=1, command=f"opsbench run {ctx.job_id} --dry-run",
            ))
        elif ctx.dry_run:
            out.outcome = "dry_run"
            out.note = f"would delete {min(out.eligible, cap)} rows"
        elif out.eligible:
            _delete_batches(ctx, t, out, batch_size, cap, timeouts, pause_s)
        outcomes.append(out)

    record_state(ctx, "insert_cleanup_run", (
        {"at": now, "job_id": ctx.job_id, "run_id": ctx.run_id, "table_name": o.table, "cutoff": o.cutoff,
         "candidates": o.eligible, "table_rows": o.table_rows, "deleted": o.deleted, "batches": o.batches,
         "dry_run": ctx.dry_run, "outcome": o.outcome, "note": o.note}
        for o in outcomes
    ))

    metrics: dict[str, float] = {"stuck_jobs": float(len(stuck))}
    parts = []
    for o in outcomes:
        metrics[f"{o.table}_eligible"] = float(o.eligible)
        metrics[f"{o.table}_deleted"] = float(o.deleted)
        verb = "would delete" if o.outcome == "dry_run" else "deleted"
        count = min(o.eligible, cap) if o.outcome == "dry_run" else o.deleted
        parts.append(f"{o.table}: {verb} {count} of {o.eligible} eligible ({o.outcome}{': ' + o.note if o.note and o.outcome != 'dry_run' else ''})")
    if len(stuck):
        ids = ", ".join(str(x) for x in stuck["job_id"].head(20))
        parts.append(f"{len(stuck)} stuck job(s) left unchanged for a human: {ids}"
                     + (" ..." if len(stuck) > 20 else ""))
    failed = any(o.outcome == "failed" for o in outcomes)
    return JobResult(
        status="failed" if failed else "ok",
        summary=("DRY RUN - nothing changed. " if ctx.dry_run else "") + "; ".join(parts),
        metrics=metrics, findings=findings, rules={REFUSED},
    )

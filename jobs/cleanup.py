"""Safe cleanup of the backend's expiring rows (rate-limit rows, idempotency keys, old error logs).

`rate_limit_log` older than 7 days, expired `idempotency_keys`, and `error_log`
older than a retention (default 90 days) - through the MAINTENANCE connection
only, in batches by primary key, each batch its own short transaction with
lock_timeout and statement_timeout set, with a cap on rows per run: `max_rows`
is one budget for all the tables of a run, spent in table order, so a run never
deletes more than `max_rows` rows in total; what the cap leaves goes next run.

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
from jobs import args as read
from jobs.args import JobArgError
from jobs.probes.common import record_state
from ops.contract import Finding, JobContext, JobResult, Severity
from ops.core.redact import redact

REFUSED = "cleanup_refused"

# PostgreSQL error codes that end a batch cleanly: lock_timeout, statement_timeout.
_LOCK_NOT_AVAILABLE = "55P03"
_QUERY_CANCELED = "57014"


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
    # 24 h keys: with a weekly cleanup most of the table is expired by
    # design, so only "everything" is implausible here
    "idempotency_keys": Target("idempotency_keys", "expires_at", "idempotency_grace", dt.timedelta(0), 0.95),
    "error_log": Target("error_log", "created_at", "error_log_retention", dt.timedelta(days=90), 0.5),
}


def _duration(args: dict[str, Any], key: str, default: dt.timedelta) -> dt.timedelta:
    if key not in args:
        return default
    return read.duration(args[key], f"args.{key}", numbers_are="days")


def _int(args: dict[str, Any], key: str, default: int, minimum: int = 1) -> int:
    return read.whole(args.get(key, default), f"args.{key}", minimum=minimum, noun="")


def _max_share(args: dict[str, Any], target: Target) -> float:
    value = args.get("max_share", target.default_max_share)
    if isinstance(value, dict):
        value = value.get(target.table, target.default_max_share)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise JobArgError("args.max_share: expected a share between 0 and 1, or a table of them by table name")
    out = float(value)
    if not 0.0 < out <= 1.0:  # NaN fails this too
        raise JobArgError("args.max_share: expected a share between 0 and 1")
    return out


_KNOWN_ARGS = {"tables", "rate_limit_retention", "error_log_retention", "idempotency_grace", "batch_size",
               "max_rows", "max_share", "guard_min_rows", "lock_timeout_ms", "statement_timeout_ms", "pause_s",
               "stuck_after"}


@dataclass(frozen=True)
class CleanupArgs:
    """The job's arguments, checked. `parse_args` raises JobArgError naming the key."""

    tables: list[str]
    batch_size: int
    max_rows: int          # total budget of one run, across all its tables
    guard_min_rows: int
    timeouts: dict[str, str]
    pause_s: float
    stuck_after: dt.timedelta


def parse_args(args: dict[str, Any]) -> CleanupArgs:
    read.known_keys(args, _KNOWN_ARGS)
    names = args.get("tables", list(TARGETS))
    if not isinstance(names, list) or not names or any(n not in TARGETS for n in names):
        raise JobArgError(f"args.tables: expected a list drawn from {', '.join(TARGETS)}")
    for t in TARGETS.values():
        _duration(args, t.retention_arg, t.default_retention)
        _max_share(args, t)
    share = args.get("max_share")
    if isinstance(share, dict):
        extra = sorted(set(share) - set(TARGETS))
        if extra:
            raise JobArgError(f"args.max_share: unknown table {extra[0]!r} (expected {', '.join(TARGETS)})")
    pause = read.number(args.get("pause_s", 0), "args.pause_s")
    return CleanupArgs(
        tables=list(names),
        batch_size=_int(args, "batch_size", 1000),
        max_rows=_int(args, "max_rows", 50_000),
        guard_min_rows=_int(args, "guard_min_rows", 100, minimum=0),
        timeouts={"lock_timeout": f"{_int(args, 'lock_timeout_ms', 2000)}ms",
                  "statement_timeout": f"{_int(args, 'statement_timeout_ms', 30_000)}ms"},
        pause_s=float(pause),
        stuck_after=_duration(args, "stuck_after", dt.timedelta(minutes=30)),
    )


def validate_args(args: dict[str, Any]) -> None:
    """For the jobs-file loader: a bad argument fails at start, naming the key."""
    parse_args(args)


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


def _delete_batches(ctx: JobContext, target: Target, out: TableOutcome, batch_size: int, budget: int,
                    max_rows: int, timeouts: dict[str, str], pause_s: float) -> None:
    """Delete eligible rows in batches, at most `budget` (what is left of the run's max_rows)."""
    q = queries.load("maintenance/cleanup")
    delete = getattr(q, f"{target.table}_delete_batch")
    engine = ctx.maintenance
    while out.deleted < budget:
        n = min(batch_size, budget - out.deleted)
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
    if out.deleted >= budget and out.deleted < out.eligible:
        _mark_capped(out, max_rows)


def _mark_capped(out: TableOutcome, max_rows: int) -> None:
    out.outcome = "capped"
    out.note = f"stopped at the run's cap of {max_rows} rows (all tables together); the rest goes next run"


def _stuck_jobs(ctx: JobContext, conn: sa.Connection, older: dt.timedelta) -> pd.DataFrame:
    return queries.load("metrics").stuck_jobs(conn, older_than=older, now=ctx.now())


def cleanup(ctx: JobContext) -> JobResult:
    """Job: delete expired backend rows safely.

    args: tables (all three, cleaned in this order), rate_limit_retention (7
    days), error_log_retention (90 days), idempotency_grace (0), batch_size
    (1000), max_rows (50000: the budget of one run for all its tables together,
    spent in table order; what is left over goes next run), max_share
    (per-table defaults; a number or a table by name), guard_min_rows (100:
    below this many rows the guard stays quiet), lock_timeout_ms (2000),
    statement_timeout_ms (30000), pause_s (0), stuck_after (30min).
    Honors ctx.dry_run.
    """
    a = ctx.args
    p = parse_args(a)
    names, batch_size, cap, guard_min = p.tables, p.batch_size, p.max_rows, p.guard_min_rows
    timeouts, pause_s = p.timeouts, p.pause_s
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
        stuck = _stuck_jobs(ctx, conn, p.stuck_after)

    budget = cap  # rows this run may still delete, across all its tables
    would: dict[str, int] = {}
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
            would[t.table] = min(out.eligible, budget)
            budget -= would[t.table]
            out.note = f"would delete {would[t.table]} rows"
            if would[t.table] < out.eligible:
                out.note += f" (the run's cap of {cap} rows, all tables together, leaves the rest for next run)"
        elif out.eligible and budget <= 0:
            _mark_capped(out, cap)
        elif out.eligible:
            _delete_batches(ctx, t, out, batch_size, budget, cap, timeouts, pause_s)
            budget -= out.deleted
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
        count = would[o.table] if o.outcome == "dry_run" else o.deleted
        parts.append(f"{o.table}: {verb} {count} of {o.eligible} eligible ({o.outcome}{': ' + o.note if o.note and o.outcome != 'dry_run' else ''})")
    if len(stuck):
        ids = ", ".join(str(x) for x in stuck["job_id"].head(20))
        parts.append(f"{len(stuck)} stuck job(s) left unchanged for a human: {ids}"
                     + (" ..." if len(stuck) > 20 else ""))
    total = sum(would.values()) if ctx.dry_run else sum(o.deleted for o in outcomes)
    metrics["deleted_total"] = float(sum(o.deleted for o in outcomes))
    failed = any(o.outcome == "failed" for o in outcomes)
    return JobResult(
        status="failed" if failed else "ok",
        summary=("DRY RUN - nothing changed. " if ctx.dry_run else "") + "; ".join(parts)
                + f"; {'would delete' if ctx.dry_run else 'deleted'} {total} row(s) in all "
                  f"(cap {cap} per run, all tables together)",
        metrics=metrics, findings=findings, rules={REFUSED},
    )


ARG_VALIDATORS = {"cleanup": validate_args}

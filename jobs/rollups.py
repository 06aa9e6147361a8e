"""The `rollups` daemon job: keep the daily rollups of the report zone up to date.

Each run recomputes the last `days` closed local days (late rows, status
changes of recent jobs) and anything missed while the daemon was down; the
first run of a zone backfills. See ops/data/rollups.py for the design.

Arguments (jobs/jobs.toml, [jobs.rollups.args]):
    days = 3             closed days recomputed each run (the late-data horizon)
    backfill_days = 0    0: backfill from the first day with data; N: only the last N days
    zones = []           extra IANA zones to keep rollups for besides REPORT_TZ
"""

from __future__ import annotations

from ops.contract import JobContext, JobResult
from ops.data import rollups


def refresh(ctx: JobContext) -> JobResult:
    days = int(ctx.args.get("days", rollups.DEFAULT_DAYS))
    backfill = int(ctx.args.get("backfill_days", 0)) or None
    zones = [ctx.settings.report_tz, *[z for z in ctx.args.get("zones", []) if z != ctx.settings.report_tz]]
    if ctx.dry_run:
        marks = {z: rollups.watermark(ctx.state, z) for z in zones}
        text = ", ".join(f"{z}: through {m.refreshed_through}" if m else f"{z}: never" for z, m in marks.items())
        return JobResult("ok", f"dry run: rollups {text}")
    results = [rollups.refresh(ctx.analytics, ctx.state, z, days=days, now=ctx.now(), backfill_days=backfill)
               for z in zones]
    metrics = {
        "rows_read": float(sum(r.rows_read for r in results)),
        "rows_changed": float(sum(r.rows_changed for r in results)),
    }
    return JobResult("ok", "; ".join(r.summary for r in results), metrics)

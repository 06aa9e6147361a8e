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

from typing import Any

from jobs import args as read
from ops.contract import JobContext, JobResult
from ops.data import rollups


def rollup_args(args: dict[str, Any]) -> dict[str, Any]:
    """The job's arguments with defaults, checked. Raises JobArgError naming the key."""
    read.known_keys(args, {"days", "backfill_days", "zones"})
    return {"days": read.whole(args.get("days", rollups.DEFAULT_DAYS), "args.days", minimum=1),
            "backfill_days": read.whole(args.get("backfill_days", 0), "args.backfill_days", minimum=0),
            "zones": read.zones(args.get("zones", []), "args.zones")}


def validate_args(args: dict[str, Any]) -> None:
    rollup_args(args)


def refresh(ctx: JobContext) -> JobResult:
    a = rollup_args(ctx.args)
    days = a["days"]
    backfill = a["backfill_days"] or None
    zones = [ctx.settings.report_tz, *[z for z in a["zones"] if z != ctx.settings.report_tz]]
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


ARG_VALIDATORS = {"refresh": validate_args}

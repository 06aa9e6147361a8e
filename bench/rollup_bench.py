"""Rollups at scale: the backfill, a daily refresh, and 365-day series read back.

The bench database is both analytics and state here (schema opsbench in the
same database), as in the demo. Timed separately:
  * backfill: the first refresh of the zone (every day of history);
  * refresh: a later run recomputing the last 3 closed days (what the daemon does hourly);
  * series: revenue_series / dau_series / activity_series over the 365 days ending on the
    anchor's day, median of `runs`: the closed days from the rollups plus
    today from the raw tables (the whole reader), and the closed-day part
    alone (the state query) - the goal is < 50 ms;
  * the raw 365-day queries, for comparison.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

import queries
from bench.timing import median_ms, same_frame
from ops.data import rollups

GOAL_MS = 50.0
TZ = "UTC"


def run(analytics: sa.Engine, state: sa.Engine, anchor: dt.datetime, runs: int) -> dict:
    today = rollups.local_today(TZ, anchor)
    start = today - dt.timedelta(days=364)
    rollups.forget(state, TZ)   # a real backfill, whatever an earlier run left
    t0 = dt.datetime.now()
    backfill = rollups.refresh(analytics, state, TZ, now=anchor)
    backfill_s = (dt.datetime.now() - t0).total_seconds()
    t0 = dt.datetime.now()
    daily = rollups.refresh(analytics, state, TZ, now=anchor, days=3)
    refresh_s = (dt.datetime.now() - t0).total_seconds()

    sql = queries.load("state/rollups")
    out: dict = {
        "tz": TZ, "window": {"start": start.isoformat(), "end": today.isoformat()},
        "backfill": {"seconds": round(backfill_s, 1), "rows_read": backfill.rows_read,
                     "rows_changed": backfill.rows_changed, "from": str(backfill.start), "through": str(backfill.end)},
        "daily_refresh": {"seconds": round(refresh_s, 2), "rows_read": daily.rows_read,
                          "rows_changed": daily.rows_changed},
        "series": {}, "goal_ms": GOAL_MS,
    }
    dau_cols = ["day", "dau", "new_users", "new_active", "returning_active"]

    def activity_today(c, **kw):   # today's row as the reader makes it: today's raw user-days + stored look-back
        return rollups.activity_tail(c, state, kw["start"], kw["end"], tz=kw["tz"])
    cases = (
        # name, whole reader, closed days from the state tables, today's raw part, the raw query for the window
        ("revenue", rollups.revenue_series, sql.revenue_series, queries.revenue.daily.raw, queries.revenue.daily.raw),
        ("dau", rollups.dau_series, sql.dau_series, queries.rollups.dau_days.raw,
         lambda c, **kw: queries.activity.daily.raw(c, **kw)[dau_cols]),
        ("activity (with WAU/MAU)", rollups.activity_series, sql.activity_series, activity_today,
         queries.activity.daily.raw),
        ("durations", rollups.durations_series, sql.durations_series, queries.errors.durations.raw,
         queries.errors.durations.raw),
    )
    # today's activity row as before (activity.daily of one day: 29 days of raw look-back), for comparison
    out["activity_today_raw_lookback_ms"], _ = median_ms(
        lambda: queries.activity.daily.raw(analytics, start=today, end=today, tz=TZ), runs)
    for name, reader, rolled, raw_today, raw in cases:
        whole_ms, _ = median_ms(lambda: reader(analytics, state, start, today, tz=TZ, today=today), runs)
        closed_ms, _ = median_ms(lambda: rolled(state, start=start, end=today - dt.timedelta(days=1), tz=TZ), runs)
        today_ms, _ = median_ms(lambda: raw_today(analytics, start=today, end=today, tz=TZ), runs)
        raw_ms, _ = median_ms(lambda: raw(analytics, start=start, end=today, tz=TZ), max(1, min(runs, 3)))
        got = reader(analytics, state, start, today, tz=TZ, today=today)
        want = raw(analytics, start=start, end=today, tz=TZ)
        out["series"][name] = {
            "series_ms": whole_ms, "closed_days_from_rollups_ms": closed_ms, "today_from_raw_ms": today_ms,
            "raw_365_days_ms": raw_ms, "speedup_vs_raw": round(raw_ms / whole_ms, 1) if whole_ms else None,
            "equals_raw": same_frame(got, want),
            "goal_met_closed_days": closed_ms < GOAL_MS, "goal_met_with_today": whole_ms < GOAL_MS,
        }
    out["aware_30_days"] = aware_30_days(analytics, state, today, runs)
    return out


def aware_30_days(analytics: sa.Engine, state: sa.Engine, today: dt.date, runs: int) -> dict:
    """Each rollup-aware series query over the 30 days ending today (ops/data/series.py, as `opsbench query`
    and the notebooks read it) against the raw query, interleaved, and against its floor."""
    from bench.timing import interleaved_ms
    from ops.data import series

    table = {"revenue.daily": "purchases"}
    bench_sql = queries.load("bench/bench")
    out = {}
    for name in series.QUERIES:
        q = queries.get(name)
        closed = name == "activity.summary"          # a closed window: the one the rollups answer
        end = today - dt.timedelta(days=1) if closed else today
        params = {"start": end - dt.timedelta(days=29), "end": end, "tz": TZ}
        bound = q.bind(**params)
        ft = table.get(name, "video_jobs")
        floor_q = getattr(bench_sql, f"floor_{ft}")
        ms = interleaved_ms({"aware": lambda: series.read_from(series.check(analytics, state, bound["tz"]), name, **bound),
                             "raw": lambda: q.raw(analytics, **params), "floor": lambda: floor_q(analytics)}, runs)
        out[name] = {"window": [str(params["start"]), str(end)], "aware_ms": ms["aware"], "raw_ms": ms["raw"],
                     "floor_table": ft, "floor_ms": ms["floor"],
                     "ratio": round(ms["aware"] / ms["floor"], 2) if ms["floor"] else None,
                     "equals_raw": same_frame(series.read_from(series.check(analytics, state, bound["tz"]), name, **bound), q.raw(analytics, **params))}
    return out


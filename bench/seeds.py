"""The seeds' own SQL (bench/seeds_sql/) side by side with opsbench's queries on the same data.

For each of the four analyses: both medians, timed interleaved in one block
(seeds, opsbench, opsbench through the rollups; again; ...), so the machine's
load at any moment falls on all alike; the ratio seeds / opsbench (> 1:
opsbench is faster), and whether the answers agree, compared on what both
compute. The seeds cut days with DATE() in the session's time zone and start
their window at NOW() - interval; both sides run in sessions with TimeZone
'UTC' and opsbench's queries get tz = 'UTC', the same spelling (PostgreSQL
treats 'UTC' as a fixed-offset abbreviation, 'Etc/UTC' as a zone with rules:
comparing one against the other would time the spelling, not the query).
Only whole days inside the seeds' window are compared. Every disagreement is
counted and explained. The daily series are also timed through the
rollup-aware path (ops/data/series.py: closed days from the rollups, today
raw), which is what `opsbench query` and the notebooks run.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

import queries
from bench.timing import interleaved_ms, same_frame
from queries.loader import parse_sql_file

SEEDS_DIR = Path(__file__).resolve().parent / "seeds_sql"


def seeds_query(name: str) -> queries.NamedQuery:
    return parse_sql_file(SEEDS_DIR / f"{name}.sql", "seeds")[name]


def _server_now(engine: sa.Engine) -> tuple[dt.datetime, str]:
    with engine.connect() as c:
        row = queries.load("bench/bench").server_settings.execute(c).mappings().one()
        now = c.execute(sa.select(sa.func.now())).scalar_one()
    return now, row["timezone"]


def _days(frame: pd.DataFrame, col: str = "date") -> pd.DataFrame:
    out = frame.copy()
    out["day"] = pd.to_datetime(out[col]).dt.date
    return out.set_index("day")


ZONE = "UTC"


def _utc_engine(engine: sa.Engine) -> sa.Engine:
    """The same database in read-only sessions whose TimeZone is spelled 'UTC' (the seeds' DATE() uses it)."""
    return sa.create_engine(engine.url, pool_pre_ping=True, connect_args={
        "options": "-c TimeZone=UTC -c statement_timeout=0 -c default_transaction_read_only=on",
        "application_name": "opsbench-bench"})


def compare_all(engine: sa.Engine, runs: int, state: sa.Engine | None = None) -> list[dict[str, Any]]:
    """`state`: the state store holding this database's rollups (for the rollup-aware timings), or None."""
    utc = _utc_engine(engine)
    try:
        now, server_tz = _server_now(utc)
        assert server_tz == ZONE, server_tz
        today = now.astimezone(ZoneInfo(ZONE)).date()
        return [
            _revenue(utc, runs, today, ZONE, state),
            _dau(utc, runs, today, ZONE, state),
            _error_rate(utc, runs, today, ZONE, state),
            _reconciliation(utc, runs),
        ]
    finally:
        utc.dispose()


def _timed(engine: sa.Engine, runs: int, seeds_name: str, ours: queries.NamedQuery, params: dict,
           state: sa.Engine | None = None):
    """Seeds, opsbench raw and (with `state`) opsbench through the rollups, interleaved in one block."""
    from ops.data import series

    theirs_q = seeds_query(seeds_name)
    fns = {"seeds": lambda: theirs_q(engine), "ours": lambda: ours.raw(engine, **params)}
    bound = ours.bind(**params)
    if state is not None:
        fns["rolled"] = lambda: series.read_from(series.check(engine, state, bound["tz"]), ours.qualified_name, **bound)
    ms = interleaved_ms(fns, runs)
    ours_frame = ours.raw(engine, **params)
    if state is not None:
        rolled = series.read_from(series.check(engine, state, bound["tz"]), ours.qualified_name, **bound)
        ms["rolled_equals_raw"] = same_frame(rolled, ours_frame)
    return theirs_q(engine), ours_frame, ms["seeds"], ms["ours"], ms



def _result(analysis: str, ours_name: str, theirs_ms: float, ours_ms: float, compared: int, agree: int,
            details: dict, verdict: str, ms: dict | None = None) -> dict[str, Any]:
    out = {"analysis": analysis, "opsbench_query": ours_name, "seeds_ms": theirs_ms, "opsbench_ms": ours_ms,
           "speedup": round(theirs_ms / ours_ms, 2) if ours_ms else None,
           "compared": compared, "agree": agree, "agree_all": compared == agree, "details": details,
           "verdict": verdict, "zone": ZONE, "interleaved": True}
    if ms and "rolled" in ms:
        out["opsbench_rollups_ms"] = ms["rolled"]
        out["speedup_rollups"] = round(theirs_ms / ms["rolled"], 2) if ms["rolled"] else None
        out["rollups_equal_raw"] = ms["rolled_equals_raw"]
    return out


def _revenue(engine, runs, today, tz, state=None) -> dict:
    params = {"start": today - dt.timedelta(days=29), "end": today, "tz": tz}
    theirs, ours, t_ms, o_ms, ms = _timed(engine, runs, "daily_revenue", queries.revenue.daily, params, state)
    t, o = _days(theirs), ours.set_index("day")
    whole = [d for d in o.index if d in t.index]  # our window lies inside the seeds' NOW() - 30 days
    diff_purchases = sum(int(t.loc[d, "purchases"]) - int(o.loc[d, "purchases"]) for d in whole)
    diff_credits = sum(int(t.loc[d, "total_credits_sold"]) - int(o.loc[d, "credits_sold"]) for d in whole)
    agree = sum(int(t.loc[d, "purchases"]) == int(o.loc[d, "purchases"])
                and int(t.loc[d, "total_credits_sold"]) == int(o.loc[d, "credits_sold"]) for d in whole)
    return _result("daily revenue", "revenue.daily", t_ms, o_ms, len(whole), agree,
                   {"extra_purchases_counted_by_seeds": diff_purchases, "extra_credits_counted_by_seeds": diff_credits},
                   "opsbench is right: the seeds count ledger credit grants, not money, so TestFlight (Sandbox) "
                   "purchases and duplicated or wrong grants are counted as sales, refunds are ignored, and there "
                   "is no price at all; opsbench counts each Production App Store transaction once, "
                   "with its price, from purchases.", ms)


def _dau(engine, runs, today, tz, state=None) -> dict:
    params = {"start": today - dt.timedelta(days=29), "end": today, "tz": tz}
    theirs, ours, t_ms, o_ms, ms = _timed(engine, runs, "daily_active_users", queries.activity.daily, params, state)
    t, o = _days(theirs), ours.set_index("day")
    whole = [d for d in o.index if d in t.index]
    missing = sum(int(o.loc[d, "dau"]) - int(t.loc[d, "active_users"]) for d in whole)
    agree = sum(int(o.loc[d, "dau"]) == int(t.loc[d, "active_users"]) for d in whole)
    return _result("daily active users", "activity.daily", t_ms, o_ms, len(whole), agree,
                   {"user_days_missed_by_seeds": missing},
                   "opsbench is right by its stated definition: a user who bought credits that day used the "
                   "app even without generating a video; the seeds only count video_jobs, so buyers who did "
                   "not generate are missing (opsbench also gives WAU/MAU from the same pass).", ms)


def _error_rate(engine, runs, today, tz, state=None) -> dict:
    params = {"start": today - dt.timedelta(days=6), "end": today, "tz": tz}
    theirs, ours, t_ms, o_ms, ms = _timed(engine, runs, "error_rate", queries.errors.daily, params, state)
    t, o = _days(theirs), ours.set_index("day")
    whole = [d for d in o.index if d in t.index]
    agree = 0
    worst = 0.0
    for d in whole:
        ours_pct = 100.0 * float(o.loc[d, "error_rate"]) if pd.notna(o.loc[d, "error_rate"]) else None
        theirs_pct = float(t.loc[d, "error_rate_pct"])
        if ours_pct is not None and round(ours_pct, 2) == theirs_pct:
            agree += 1
        if ours_pct is not None:
            worst = max(worst, abs(ours_pct - theirs_pct))
    unfinished = sum(int(o.loc[d, "unfinished"]) for d in whole)
    return _result("error rate", "errors.daily", t_ms, o_ms, len(whole), agree,
                   {"unfinished_jobs_in_seeds_denominator": unfinished, "max_abs_diff_pct_points": round(worst, 3)},
                   "opsbench is right: pending/processing jobs have no outcome yet, but the seeds count them as "
                   "successes in the denominator (today's rate reads too low); the seeds' query also divides by "
                   "COUNT(*) with no interval, so 1 failure in 3 jobs reads as a 33 % outage, where opsbench "
                   "gives the 95 % Wilson interval.", ms)


def _reconciliation(engine, runs) -> dict:
    theirs_q = seeds_query("reconcile_credits")
    ours_q = queries.reconciliation.balance_vs_ledger
    ms = interleaved_ms({"seeds": lambda: theirs_q(engine), "ours": lambda: ours_q(engine)}, runs)
    t_ms, o_ms = ms["seeds"], ms["ours"]
    theirs, ours = theirs_q(engine), ours_q(engine)
    t_ids, o_ids = {str(x) for x in theirs["id"]}, {str(x) for x in ours["user_id"]}
    only_ours = ours[ours["user_id"].astype(str).isin(o_ids - t_ids)]
    no_ledger = int((only_ours["ledger_rows"] == 0).sum())
    return _result("credit reconciliation", "reconciliation.balance_vs_ledger", t_ms, o_ms, len(o_ids | t_ids),
                   len(o_ids & t_ids),
                   {"found_by_opsbench": len(o_ids), "found_by_seeds": len(t_ids),
                    "missed_by_seeds": len(o_ids - t_ids), "missed_by_seeds_with_no_ledger_rows": no_ledger,
                    "found_only_by_seeds": len(t_ids - o_ids)},
                   "opsbench is right: for a user with a balance but no ledger rows SUM(change) is NULL, "
                   "`credits_remaining != NULL` is NULL, and the seeds' query drops exactly the users whose "
                   "credits came from nowhere; it also runs two correlated subqueries per user where opsbench "
                   "aggregates the ledger once and joins.")

"""Independent recomputations in pandas, used by tests to check the SQL in queries/.

Nothing here runs the query modules: raw tables are read whole with
`pd.read_sql_table` (no SQL text) and every figure is recomputed with pandas,
zoneinfo and plain Python, by the most direct method rather than a clever one
(WAU is "distinct users in the 7 days", day by day), so a shared mistake is
unlikely. Also home to `insert_rows`, which tests use to write hand-made rows
through SQLAlchemy Core (again no SQL text).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterable
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa

from ops.core.clock import utc_now

Z95 = 1.959964


# -- raw rows in and out -------------------------------------------------------


def insert_rows(engine: sa.Engine, table: str, rows: Iterable[dict]) -> None:
    """INSERT rows, in order, into a backend table (reflected, so no SQL text).

    Rows may name different columns (omitted ones get their defaults):
    consecutive rows with the same keys go in one executemany, because an
    executemany takes its column list from its first row.
    """
    rows = list(rows)
    if not rows:
        return
    tbl = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        for _, run in itertools.groupby(rows, key=lambda r: tuple(sorted(r))):
            conn.execute(tbl.insert(), list(run))


def read_table(engine: sa.Engine, table: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql_table(table, conn)


def local_day(ts: pd.Series, tz: str) -> pd.Series:
    """The local calendar day of each (timezone-aware) timestamp in `tz`."""
    ts = pd.to_datetime(ts, utc=True)
    return ts.dt.tz_convert(ZoneInfo(tz)).dt.date


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def yesterday(tz: str) -> dt.date:
    return utc_now().astimezone(ZoneInfo(tz)).date() - dt.timedelta(days=1)


def wilson(failed: int, n: int, z: float = Z95) -> tuple[float, float] | tuple[None, None]:
    """95 % Wilson score interval of failed/n, written out from the textbook formula."""
    if n == 0:
        return None, None
    p = failed / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / denom), min(1.0, (centre + spread) / denom)


# -- revenue -----------------------------------------------------------------


def canonical_purchases(purchases: pd.DataFrame) -> pd.DataFrame:
    """Each App Store transaction once: its first recorded row (lowest id).

    Its refunded_at is the transaction's refund, whichever copy carries it:
    the earliest refunded_at over all its copies (a REFUND recorded only on a
    later duplicate still refunds the transaction).
    """
    first = purchases.sort_values("id").drop_duplicates("transaction_id", keep="first").copy()
    refunds = {}
    for tid, at in zip(purchases["transaction_id"], pd.to_datetime(purchases["refunded_at"], utc=True)):
        if pd.notna(at) and (tid not in refunds or at < refunds[tid]):
            refunds[tid] = at
    first["refunded_at"] = [refunds.get(t, pd.NaT) for t in first["transaction_id"]]
    first["refunded_at"] = pd.to_datetime(first["refunded_at"], utc=True)
    return first


def revenue_daily(purchases: pd.DataFrame, start: dt.date, end: dt.date, tz: str,
                  currency: str = "USD") -> pd.DataFrame:
    p = canonical_purchases(purchases)
    p = p[(p["environment"] == "Production") & (p["currency"] == currency)].copy()
    p["price"] = p["price"].astype(float)
    p["buy_day"] = local_day(p["purchased_at"], tz)
    refunded = p[p["refunded_at"].notna()].copy()
    refunded["refund_day"] = local_day(refunded["refunded_at"], tz)
    out = []
    for d in days(start, end):
        bought = p[p["buy_day"] == d]
        back = refunded[refunded["refund_day"] == d]
        gross = float(bought["price"].sum())
        payers = bought["user_id"].nunique()
        out.append({
            "day": d,
            "gross": round(gross, 2),
            "refunds": round(float(back["price"].sum()), 2),
            "net": round(gross - float(back["price"].sum()), 2),
            "purchases": len(bought),
            "refunded_purchases": len(back),
            "paying_users": payers,
            "arppu": gross / payers if payers else None,
            "credits_sold": int(bought["credits"].sum()),
        })
    return pd.DataFrame(out)


def revenue_summary(purchases: pd.DataFrame, start: dt.date, end: dt.date, tz: str,
                    currency: str = "USD") -> dict:
    daily = revenue_daily(purchases, start, end, tz, currency)
    p = canonical_purchases(purchases)
    p = p[(p["environment"] == "Production") & (p["currency"] == currency)]
    in_window = p[local_day(p["purchased_at"], tz).between(start, end)]
    payers = in_window["user_id"].nunique()
    gross = float(in_window["price"].astype(float).sum())
    return {
        "gross": round(gross, 2),
        "refunds": round(float(daily["refunds"].sum()), 2),
        "net": round(gross - float(daily["refunds"].sum()), 2),
        "purchases": len(in_window),
        "refunded_purchases": int(daily["refunded_purchases"].sum()),
        "paying_users": payers,
        "arppu": gross / payers if payers else None,
        "credits_sold": int(in_window["credits"].sum()),
    }


# -- activity ----------------------------------------------------------------


def active_user_days(jobs: pd.DataFrame, purchases: pd.DataFrame, tz: str) -> dict[dt.date, set]:
    """local day -> users who created a video job or made a purchase (any environment) that day."""
    out: dict[dt.date, set] = {}
    for frame, col in ((jobs, "created_at"), (purchases, "purchased_at")):
        for user, day in zip(frame["user_id"], local_day(frame[col], tz)):
            out.setdefault(day, set()).add(user)
    return out


def activity_daily(jobs: pd.DataFrame, purchases: pd.DataFrame, users: pd.DataFrame,
                   start: dt.date, end: dt.date, tz: str) -> pd.DataFrame:
    by_day = active_user_days(jobs, purchases, tz)
    signup = dict(zip(users["id"], local_day(users["created_at"], tz)))

    def distinct_over(d: dt.date, n: int) -> int:
        seen: set = set()
        for k in range(n):
            seen |= by_day.get(d - dt.timedelta(days=k), set())
        return len(seen)

    out = []
    for d in days(start, end):
        active = by_day.get(d, set())
        mau = distinct_over(d, 30)
        new_active = sum(1 for u in active if signup.get(u) == d)
        out.append({
            "day": d,
            "dau": len(active),
            "wau": distinct_over(d, 7),
            "mau": mau,
            "stickiness": len(active) / mau if mau else None,
            "new_users": sum(1 for s in signup.values() if s == d),
            "new_active": new_active,
            "returning_active": len(active) - new_active,
        })
    return pd.DataFrame(out)


# -- errors ------------------------------------------------------------------


def errors_daily(jobs: pd.DataFrame, start: dt.date, end: dt.date, tz: str) -> pd.DataFrame:
    j = jobs.assign(day=local_day(jobs["created_at"], tz))
    out = []
    for d in days(start, end):
        that_day = j[j["day"] == d]
        finished = that_day[that_day["status"].isin(["completed", "failed"])]
        n = len(finished)
        failed = int((finished["status"] == "failed").sum())
        low, high = wilson(failed, n)
        out.append({
            "day": d,
            "jobs": n,
            "failed": failed,
            "unfinished": int(that_day["status"].isin(["pending", "processing"]).sum()),
            "error_rate": failed / n if n else None,
            "wilson_low": low,
            "wilson_high": high,
        })
    return pd.DataFrame(out)


# -- comparing -----------------------------------------------------------------


def assert_frames_match(actual: pd.DataFrame, expected: pd.DataFrame, *, key: str = "day",
                        rel: float = 1e-9, abs_: float = 1e-6) -> None:
    """Every expected column equal in `actual`, row by row on `key`; NULL == None/NaN."""
    assert list(actual[key]) == list(expected[key]), f"{key} values differ"
    for col in expected.columns:
        assert col in actual.columns, f"missing column {col}"
        for k, a, e in zip(expected[key], actual[col], expected[col]):
            a_null = a is None or (isinstance(a, float) and math.isnan(a))
            e_null = e is None or (isinstance(e, float) and math.isnan(e))
            assert a_null == e_null, f"{col} on {k}: got {a!r}, expected {e!r}"
            if a_null:
                continue
            if isinstance(e, (int, float)) and not isinstance(e, bool):
                assert math.isclose(float(a), float(e), rel_tol=rel, abs_tol=abs_), \
                    f"{col} on {k}: got {a!r}, expected {e!r}"
            else:
                assert a == e, f"{col} on {k}: got {a!r}, expected {e!r}"

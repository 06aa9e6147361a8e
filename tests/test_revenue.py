"""queries/revenue.sql against hand-made rows (empty_db) and the seeded demo (demo_db)."""

from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd
import pytest
from support.recompute import assert_frames_match, insert_rows, read_table, revenue_daily, revenue_summary, yesterday

import queries

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

UTC = dt.timezone.utc
D = dt.date
USER_A, USER_B, USER_C = (uuid.UUID(int=i) for i in (0xA, 0xB, 0xC))


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A UTC instant in March 2026."""
    return dt.datetime(2026, 3, day, hour, minute, tzinfo=UTC)


# Hand-made purchases. Istanbul is UTC+3 all year.
PURCHASES = [
    # 22:30 UTC on the 10th is 01:30 on the 11th in Istanbul
    dict(transaction_id="T-late", user_id=USER_A, product_id="credits_100", credits=100, price=9.99,
         currency="USD", environment="Production", purchased_at=at(10, 22, 30)),
    # TestFlight: no money
    dict(transaction_id="T-sandbox", user_id=USER_B, product_id="credits_100", credits=100, price=9.99,
         currency="USD", environment="Sandbox", purchased_at=at(10, 12)),
    # bought on the 5th, refunded on the 12th
    dict(transaction_id="T-refund", user_id=USER_B, product_id="credits_500", credits=500, price=39.99,
         currency="USD", environment="Production", purchased_at=at(5, 10), refunded_at=at(12, 9)),
    # the same App Store transaction recorded twice: counts once
    dict(transaction_id="T-dup", user_id=USER_C, product_id="credits_100", credits=100, price=9.99,
         currency="USD", environment="Production", purchased_at=at(12, 15)),
    dict(transaction_id="T-dup", user_id=USER_C, product_id="credits_100", credits=100, price=9.99,
         currency="USD", environment="Production", purchased_at=at(12, 15)),
    # a second purchase by A on the 12th: A pays on two days, one paying user over the window
    dict(transaction_id="T-a2", user_id=USER_A, product_id="credits_500", credits=500, price=39.99,
         currency="USD", environment="Production", purchased_at=at(12, 8)),
    # another currency: never added to USD
    dict(transaction_id="T-eur", user_id=USER_B, product_id="credits_100", credits=100, price=8.99,
         currency="EUR", environment="Production", purchased_at=at(12, 11)),
    # 21:00 UTC on the 13th is exactly 00:00 on the 14th in Istanbul
    dict(transaction_id="T-midnight", user_id=USER_B, product_id="credits_100", credits=100, price=9.99,
         currency="USD", environment="Production", purchased_at=at(13, 21)),
]


@pytest.fixture(scope="module")
def hand_db(empty_db):
    insert_rows(empty_db.writer, "users", [
        dict(id=u, email=f"{u.hex[-1]}@example.com", created_at=at(1, 0)) for u in (USER_A, USER_B, USER_C)
    ])
    insert_rows(empty_db.writer, "products", [
        dict(id="credits_100", name="100 credits", credits=100, price=9.99, currency="USD"),
        dict(id="credits_500", name="500 credits", credits=500, price=39.99, currency="USD"),
    ])
    insert_rows(empty_db.writer, "purchases", PURCHASES)
    return empty_db


def _by_day(df: pd.DataFrame) -> dict[dt.date, dict]:
    return {row["day"]: row for row in df.to_dict("records")}


def test_daily_utc_counts_production_once_and_refunds_on_refund_day(hand_db):
    df = queries.revenue.daily(hand_db.analytics, start="2026-03-04", end="2026-03-13", tz="UTC")
    assert list(df["day"]) == [D(2026, 3, d) for d in range(4, 14)]  # every day, data or not
    rows = _by_day(df)

    assert rows[D(2026, 3, 5)]["gross"] == pytest.approx(39.99)      # refunded later: still gross that day
    assert rows[D(2026, 3, 5)]["refunds"] == 0
    # the 10th in UTC: the 22:30 purchase; the sandbox one is not money
    assert rows[D(2026, 3, 10)]["gross"] == pytest.approx(9.99)
    assert rows[D(2026, 3, 10)]["purchases"] == 1
    # a day without anything: zeros and an undefined ARPPU
    empty = rows[D(2026, 3, 11)]
    assert (empty["gross"], empty["refunds"], empty["net"], empty["purchases"], empty["paying_users"],
            empty["credits_sold"]) == (0, 0, 0, 0, 0, 0)
    assert pd.isna(empty["arppu"])
    # the 12th: A's 39.99 + the duplicated 9.99 once; EUR left out; the refund of the 5th's purchase
    d12 = rows[D(2026, 3, 12)]
    assert d12["gross"] == pytest.approx(39.99 + 9.99)
    assert d12["purchases"] == 2
    assert d12["paying_users"] == 2
    assert d12["arppu"] == pytest.approx((39.99 + 9.99) / 2)
    assert d12["credits_sold"] == 600
    assert d12["refunds"] == pytest.approx(39.99)
    assert d12["refunded_purchases"] == 1
    assert d12["net"] == pytest.approx(9.99)
    assert set(df["currency"]) == {"USD"}
    assert df["arppu"].dtype == "float64"


def test_istanbul_moves_late_evening_purchase_to_next_local_day(hand_db):
    utc = _by_day(queries.revenue.daily(hand_db.analytics, start="2026-03-10", end="2026-03-14", tz="UTC"))
    ist = _by_day(queries.revenue.daily(hand_db.analytics, start="2026-03-10", end="2026-03-14",
                                        tz="Europe/Istanbul"))
    assert utc[D(2026, 3, 10)]["gross"] == pytest.approx(9.99)
    assert utc[D(2026, 3, 11)]["gross"] == 0
    assert ist[D(2026, 3, 10)]["gross"] == 0
    assert ist[D(2026, 3, 11)]["gross"] == pytest.approx(9.99)
    # 21:00 UTC on the 13th is local midnight of the 14th in Istanbul
    assert utc[D(2026, 3, 13)]["purchases"] == 1
    assert ist[D(2026, 3, 13)]["purchases"] == 0
    assert ist[D(2026, 3, 14)]["purchases"] == 1


def test_window_bounds_are_local_midnights(hand_db):
    # ends on the 13th in Istanbul: the purchase at local 00:00 on the 14th is outside
    s = queries.revenue.summary(hand_db.analytics, start="2026-03-13", end="2026-03-13", tz="Europe/Istanbul")
    assert s.loc[0, "purchases"] == 0
    s = queries.revenue.summary(hand_db.analytics, start="2026-03-14", end="2026-03-14", tz="Europe/Istanbul")
    assert s.loc[0, "purchases"] == 1


def test_summary_counts_paying_users_over_the_window(hand_db):
    s = queries.revenue.summary(hand_db.analytics, start="2026-03-01", end="2026-03-31", tz="UTC").iloc[0]
    # USD production, each transaction once: T-late, T-refund, T-dup, T-a2, T-midnight
    gross = 9.99 + 39.99 + 9.99 + 39.99 + 9.99
    assert s["gross"] == pytest.approx(gross)
    assert s["refunds"] == pytest.approx(39.99)
    assert s["net"] == pytest.approx(gross - 39.99)
    assert s["purchases"] == 5
    assert s["refunded_purchases"] == 1
    assert s["paying_users"] == 3               # A bought twice, on two days: once
    assert s["arppu"] == pytest.approx(gross / 3)
    assert s["credits_sold"] == 100 + 500 + 100 + 500 + 100
    assert (s["first_day"], s["last_day"], s["currency"]) == (D(2026, 3, 1), D(2026, 3, 31), "USD")


def test_other_currency_is_reported_alone_and_listed(hand_db):
    eur = queries.revenue.summary(hand_db.analytics, start="2026-03-01", end="2026-03-31", currency="eur").iloc[0]
    assert eur["currency"] == "EUR"
    assert eur["gross"] == pytest.approx(8.99)
    assert eur["purchases"] == 1
    cur = queries.revenue.currencies(hand_db.analytics, start="2026-03-01", end="2026-03-31", tz="UTC")
    rows = {r["currency"]: r for r in cur.to_dict("records")}
    assert set(rows) == {"USD", "EUR"}
    assert rows["USD"]["purchases"] == 5
    assert rows["USD"]["sandbox_purchases"] == 1
    assert rows["USD"]["gross"] == pytest.approx(9.99 * 3 + 39.99 * 2)
    assert rows["EUR"]["purchases"] == 1


def test_by_product_splits_the_day_and_fills_the_grid(hand_db):
    df = queries.revenue.by_product(hand_db.analytics, start="2026-03-11", end="2026-03-12", tz="UTC")
    assert len(df) == 2 * 2                     # 2 days x 2 catalogue products
    rows = {(r["day"], r["product_id"]): r for r in df.to_dict("records")}
    p100 = rows[(D(2026, 3, 12), "credits_100")]
    p500 = rows[(D(2026, 3, 12), "credits_500")]
    assert (p100["purchases"], p100["gross"], p100["refunds"]) == (1, pytest.approx(9.99), 0)
    assert (p500["purchases"], p500["gross"]) == (1, pytest.approx(39.99))
    assert p500["refunds"] == pytest.approx(39.99)   # T-refund is a credits_500, refunded on the 12th
    assert p500["net"] == pytest.approx(0)
    assert p100["product_name"] == "100 credits"
    quiet = rows[(D(2026, 3, 11), "credits_100")]
    assert (quiet["purchases"], quiet["gross"]) == (0, 0)


def test_hand_rows_match_the_pandas_recomputation(hand_db):
    raw = read_table(hand_db.writer, "purchases")
    for tz in ("UTC", "Europe/Istanbul", "America/Los_Angeles"):
        actual = queries.revenue.daily(hand_db.analytics, start="2026-03-01", end="2026-03-20", tz=tz)
        assert_frames_match(actual, revenue_daily(raw, D(2026, 3, 1), D(2026, 3, 20), tz))


# -- the seeded demo -----------------------------------------------------------------


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_demo_daily_and_summary_equal_pandas_recomputation(demo_db, tz):
    end = yesterday(tz)
    start = end - dt.timedelta(days=29)
    raw = read_table(demo_db.writer, "purchases")
    expected = revenue_daily(raw, start, end, tz)
    assert expected["purchases"].sum() > 30 and expected["refunds"].sum() > 0, "demo window has too little data"
    assert_frames_match(queries.revenue.daily(demo_db.analytics, start=start, end=end, tz=tz), expected)

    summary = queries.revenue.summary(demo_db.analytics, start=start, end=end, tz=tz).iloc[0]
    for key, value in revenue_summary(raw, start, end, tz).items():
        assert summary[key] == pytest.approx(value, rel=1e-9), key
    assert summary["paying_users"] < expected["paying_users"].sum()  # repeat buyers counted once

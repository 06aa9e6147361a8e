"""A refund belongs to the transaction, whichever copy carries it (issue 28).

The backend sometimes records an App Store transaction twice; the REFUND
notification may then land on the later copy only. Every revenue figure
(queries/revenue.sql and the rollups' queries/internal/rollups.sql) must count such a
refund once, on the earliest refunded_at of any copy, for the price of the
transaction. Checked against hand-made rows and the generator's planted case
(manifest `refund_on_duplicate`), and against the pandas recomputation, in two
time zones.
"""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from support.recompute import assert_frames_match, insert_rows, read_table, revenue_daily, revenue_summary

import queries

UTC = dt.timezone.utc
D = dt.date
USER = uuid.UUID(int=0xD)
ZONES = ("UTC", "America/Los_Angeles")


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, tzinfo=UTC)


def _buy(tid: str, price: float, day: int, refunded_at: dt.datetime | None = None, product: str = "credits_100"):
    return dict(transaction_id=tid, user_id=USER, product_id=product, credits=100, price=price, currency="USD",
                environment="Production", purchased_at=at(day, 10), refunded_at=refunded_at)


# (first copy, later copy) pairs; all at 10:00-18:00 UTC, the same local day in both zones
ROWS = [
    # refund only on the later copy: counts on the 14th
    _buy("T-later", 9.99, 3), _buy("T-later", 9.99, 3, at(14, 18)),
    # refund on both copies, different instants: counts once, on the earlier (the 15th)
    _buy("T-both", 39.99, 4, at(15, 18)), _buy("T-both", 39.99, 4, at(16, 18), product="credits_500"),
    # the later copy carries the earlier refund: counts once, on the 16th (not the 17th)
    _buy("T-early-on-copy", 4.99, 5, at(17, 18)), _buy("T-early-on-copy", 4.99, 5, at(16, 18)),
    # an ordinary refund of a single row, for contrast
    _buy("T-plain", 19.99, 6, at(16, 18)),
]
# what each refund day must show: (refunds, refunded_purchases)
EXPECTED = {D(2026, 3, 14): (9.99, 1), D(2026, 3, 15): (39.99, 1), D(2026, 3, 16): (4.99 + 19.99, 2),
            D(2026, 3, 17): (0, 0)}


@pytest.fixture(scope="module")
def dup_db(empty_db):
    insert_rows(empty_db.writer, "users", [dict(id=USER, email="d@example.com", created_at=at(1, 0))])
    insert_rows(empty_db.writer, "products", [
        dict(id="credits_100", name="100 credits", credits=100, price=9.99, currency="USD"),
        dict(id="credits_500", name="500 credits", credits=500, price=39.99, currency="USD"),
    ])
    insert_rows(empty_db.writer, "purchases", ROWS)
    return empty_db


@pytest.mark.parametrize("tz", ZONES)
def test_refund_on_any_copy_counts_once_on_its_earliest_day(dup_db, tz):
    daily = queries.revenue.daily(dup_db.analytics, start="2026-03-01", end="2026-03-20", tz=tz)
    rows = {r["day"]: r for r in daily.to_dict("records")}
    for day, (refunds, n) in EXPECTED.items():
        assert (float(rows[day]["refunds"]), rows[day]["refunded_purchases"]) == (pytest.approx(refunds), n), day
    assert float(daily["refunds"].sum()) == pytest.approx(9.99 + 39.99 + 4.99 + 19.99)
    assert daily["purchases"].sum() == 4                          # each transaction bought once
    assert_frames_match(daily, revenue_daily(read_table(dup_db.writer, "purchases"),
                                             D(2026, 3, 1), D(2026, 3, 20), tz))


@pytest.mark.parametrize("tz", ZONES)
def test_summary_by_product_by_currency_and_rollups_agree(dup_db, tz):
    raw = read_table(dup_db.writer, "purchases")
    s = queries.revenue.summary(dup_db.analytics, start="2026-03-14", end="2026-03-17", tz=tz).iloc[0]
    assert (float(s["refunds"]), s["refunded_purchases"]) == (pytest.approx(9.99 + 39.99 + 4.99 + 19.99), 4)
    expected = revenue_summary(raw, D(2026, 3, 14), D(2026, 3, 17), tz)
    assert float(s["refunds"]) == pytest.approx(expected["refunds"])

    # by product: the first copy's product (T-both's later copy says credits_500; the sale was credits_100)
    bp = queries.revenue.by_product(dup_db.analytics, start="2026-03-15", end="2026-03-15", tz=tz)
    by = {r["product_id"]: r for r in bp.to_dict("records")}
    assert float(by["credits_100"]["refunds"]) == pytest.approx(39.99)
    assert float(by["credits_500"]["refunds"]) == 0

    bc = queries.revenue.by_currency(dup_db.analytics, start="2026-03-14", end="2026-03-17", tz=tz)
    assert float(bc.set_index("currency").loc["USD", "refunds"]) == pytest.approx(9.99 + 39.99 + 4.99 + 19.99)

    rolled = queries.rollups.revenue_days(dup_db.analytics, start="2026-03-14", end="2026-03-17", tz=tz)
    got = {r["day"]: (float(r["refunds"]), r["refunded_purchases"]) for r in rolled.to_dict("records")}
    for day, (refunds, n) in EXPECTED.items():
        if n:
            assert got[day] == (pytest.approx(refunds), n), day


# -- the generator's planted case ------------------------------------------------------


def _old_rule_refunds(raw: pd.DataFrame, day: dt.date, tz: str) -> float:
    """Refunds of `day` counting only the first copy's own refunded_at (the rule before issue 28)."""
    first = raw.sort_values("id").drop_duplicates("transaction_id", keep="first")
    first = first[(first["environment"] == "Production") & (first["currency"] == "USD") & first["refunded_at"].notna()]
    days = pd.to_datetime(first["refunded_at"], utc=True).dt.tz_convert(ZoneInfo(tz)).dt.date
    return round(float(first.loc[days == day, "price"].astype(float).sum()), 2)


@pytest.mark.parametrize("tz", ZONES)
def test_demo_planted_refund_on_a_later_copy_is_counted(demo_db, tz):
    planted = demo_db.manifest["refund_on_duplicate"]
    assert planted is not None, "the generator planted no refund on a duplicate copy"
    assert planted["refund_copy_id"] > planted["first_copy_id"]
    refunded_at = dt.datetime.fromisoformat(planted["refunded_at"])
    day = refunded_at.astimezone(ZoneInfo(tz)).date()
    assert day.isoformat() == planted["utc_date"]     # noon UTC: the same local day in both zones

    raw = read_table(demo_db.writer, "purchases")
    expected = revenue_daily(raw, day, day, tz)
    actual = queries.revenue.daily(demo_db.analytics, start=day, end=day, tz=tz)
    assert_frames_match(actual, expected)
    # the planted refund is in, exactly once: the old rule's figure plus the manifest's amount
    assert float(actual.iloc[0]["refunds"]) == pytest.approx(_old_rule_refunds(raw, day, tz) + planted["amount"])
    rolled = queries.rollups.revenue_days(demo_db.analytics, start=day, end=day, tz=tz)
    usd = rolled[rolled["currency"] == "USD"].iloc[0]
    assert float(usd["refunds"]) == pytest.approx(float(actual.iloc[0]["refunds"]))
    assert usd["refunded_purchases"] == actual.iloc[0]["refunded_purchases"]

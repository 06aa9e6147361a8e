"""queries/activity.sql against hand-made rows (empty_db) and the seeded demo (demo_db)."""

from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd
import pytest
from support.recompute import activity_daily, assert_frames_match, insert_rows, read_table, yesterday

import queries

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

UTC = dt.timezone.utc
D = dt.date
MODEL = uuid.UUID(int=0x111)
U = {name: uuid.UUID(int=i + 1) for i, name in enumerate(["ann", "bob", "cat", "dan", "eve"])}


def at(month: int, day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


def job(user: str, when: dt.datetime, status: str = "completed") -> dict:
    return dict(user_id=U[user], model_id=MODEL, provider="runway", status=status, created_at=when)


# Signups. 2026-03-02 is a Monday.
SIGNUPS = {
    "ann": at(3, 2, 9),      # Monday of week 10
    "bob": at(3, 2, 22, 30),  # 22:30 UTC: Monday in UTC, Tuesday 3 March in Istanbul
    "cat": at(3, 4),         # Wednesday, same week
    "dan": at(3, 9),         # Monday of the next week
    "eve": at(3, 20),        # signs up, never does anything
}
JOBS = [
    job("ann", at(3, 2, 10)),
    job("ann", at(3, 2, 11), "failed"),      # second job, same day: still one active user-day
    job("ann", at(3, 10)),
    job("ann", at(4, 20)),                   # back after a long pause
    job("bob", at(3, 2, 22, 45)),            # 22:45 UTC: next local day in Istanbul
    job("cat", at(3, 16), "pending"),        # any status counts: asking for a video is using the app
    job("dan", at(3, 9)),
]
PURCHASES = [
    # a purchase alone makes a user active, even a TestFlight one
    dict(transaction_id="T1", user_id=U["cat"], product_id="credits_100", credits=100, price=9.99,
         currency="USD", environment="Sandbox", purchased_at=at(3, 5)),
    dict(transaction_id="T2", user_id=U["dan"], product_id="credits_100", credits=100, price=9.99,
         currency="USD", environment="Production", purchased_at=at(3, 17)),
]


@pytest.fixture(scope="module")
def hand_db(empty_db):
    insert_rows(empty_db.writer, "users", [dict(id=U[n], created_at=t) for n, t in SIGNUPS.items()])
    insert_rows(empty_db.writer, "models", [dict(id=MODEL, name="gen-3", provider="runway", cost_per_generation=10)])
    insert_rows(empty_db.writer, "products", [dict(id="credits_100", name="100", credits=100, price=9.99)])
    insert_rows(empty_db.writer, "video_jobs", JOBS)
    insert_rows(empty_db.writer, "purchases", PURCHASES)
    return empty_db


def _daily(db, start, end, tz="UTC") -> dict[dt.date, dict]:
    df = queries.activity.daily(db.analytics, start=start, end=end, tz=tz)
    assert list(df["day"]) == [D.fromisoformat(start) + dt.timedelta(days=i) for i in range(len(df))]
    return {r["day"]: r for r in df.to_dict("records")}


def test_dau_new_and_returning(hand_db):
    rows = _daily(hand_db, "2026-03-01", "2026-03-17")
    d2 = rows[D(2026, 3, 2)]
    assert (d2["dau"], d2["new_users"], d2["new_active"], d2["returning_active"]) == (2, 2, 2, 0)
    d9 = rows[D(2026, 3, 9)]                 # dan: signed up and active the same day
    assert (d9["dau"], d9["new_users"], d9["new_active"]) == (1, 1, 1)
    d10 = rows[D(2026, 3, 10)]               # ann comes back
    assert (d10["dau"], d10["new_active"], d10["returning_active"]) == (1, 0, 1)
    assert rows[D(2026, 3, 5)]["dau"] == 1   # cat's sandbox purchase
    assert rows[D(2026, 3, 16)]["dau"] == 1  # cat's pending job
    assert rows[D(2026, 3, 17)]["dau"] == 1  # dan's purchase
    quiet = rows[D(2026, 3, 1)]
    assert (quiet["dau"], quiet["wau"], quiet["mau"], quiet["new_users"]) == (0, 0, 0, 0)
    assert pd.isna(quiet["stickiness"])


def test_rolling_wau_and_mau(hand_db):
    rows = _daily(hand_db, "2026-03-02", "2026-04-20")
    # 2..8 March: ann, bob, cat; 3..9 March: ann and bob (2nd) have dropped out, dan came
    assert rows[D(2026, 3, 8)]["wau"] == 3
    assert rows[D(2026, 3, 9)]["wau"] == 2
    # 7 days ending on the 15th: 9th..15th: dan (9th), ann (10th)
    assert rows[D(2026, 3, 15)]["wau"] == 2
    # ann on 2nd and 10th only counts once in the MAU
    assert rows[D(2026, 3, 17)]["mau"] == 4
    assert rows[D(2026, 3, 17)]["stickiness"] == pytest.approx(1 / 4)
    # 30 days ending 31 March reach back to 2 March: ann, bob, cat, dan
    assert rows[D(2026, 3, 31)]["mau"] == 4
    # 30 days ending 1 April start on 3 March: bob's only day (2 March UTC) has dropped out
    assert rows[D(2026, 4, 1)]["mau"] == 3
    assert rows[D(2026, 4, 19)]["mau"] == 0
    assert rows[D(2026, 4, 20)]["mau"] == 1 and rows[D(2026, 4, 20)]["wau"] == 1


def test_istanbul_moves_22_30_utc_to_the_next_local_day(hand_db):
    utc = _daily(hand_db, "2026-03-02", "2026-03-03", "UTC")
    ist = _daily(hand_db, "2026-03-02", "2026-03-03", "Europe/Istanbul")
    assert (utc[D(2026, 3, 2)]["dau"], utc[D(2026, 3, 3)]["dau"]) == (2, 0)
    assert (ist[D(2026, 3, 2)]["dau"], ist[D(2026, 3, 3)]["dau"]) == (1, 1)
    # bob signed up at 22:30 UTC: a Tuesday signup in Istanbul
    assert (ist[D(2026, 3, 2)]["new_users"], ist[D(2026, 3, 3)]["new_users"]) == (1, 1)
    assert ist[D(2026, 3, 3)]["new_active"] == 1


def test_daily_matches_pandas_recomputation_on_hand_rows(hand_db):
    jobs = read_table(hand_db.writer, "video_jobs")
    purchases = read_table(hand_db.writer, "purchases")
    users = read_table(hand_db.writer, "users")
    for tz in ("UTC", "Europe/Istanbul", "Pacific/Auckland"):
        actual = queries.activity.daily(hand_db.analytics, start="2026-03-01", end="2026-04-25", tz=tz)
        assert_frames_match(actual, activity_daily(jobs, purchases, users, D(2026, 3, 1), D(2026, 4, 25), tz))


def test_summary(hand_db):
    s = queries.activity.summary(hand_db.analytics, start="2026-03-01", end="2026-03-17", tz="UTC").iloc[0]
    assert s["active_users"] == 4            # eve never did anything
    assert s["new_users"] == 4               # eve signed up on the 20th
    assert s["dau"] == 1                     # dan's purchase on the 17th
    assert s["wau"] == 2                     # 11th..17th: cat (16th), dan (17th)
    assert s["mau"] == 4
    assert s["stickiness"] == pytest.approx(0.25)
    # a one-day window still reports WAU/MAU ending on that day
    s = queries.activity.summary(hand_db.analytics, start="2026-03-10", end="2026-03-10", tz="UTC").iloc[0]
    assert (s["active_users"], s["dau"], s["wau"], s["mau"]) == (1, 1, 3, 4)  # wau: 4..10 March


def test_retention_weekly(hand_db):
    df = queries.activity.retention_weekly(hand_db.analytics, start="2026-03-04", end="2026-03-22", tz="UTC")
    got = {(r["cohort_week"], r["weeks_since_signup"]): r for r in df.to_dict("records")}
    # cohorts: the weeks of 2, 9 and 16 March (start=the 4th takes its whole week)
    assert sorted({k[0] for k in got}) == [D(2026, 3, 2), D(2026, 3, 9), D(2026, 3, 16)]
    w10 = [got[(D(2026, 3, 2), k)] for k in range(3)]
    assert [r["cohort_size"] for r in w10] == [3, 3, 3]          # ann, bob, cat
    assert [r["retained"] for r in w10] == [3, 1, 1]             # week 1: ann (10th); week 2: cat (16th)
    assert w10[1]["retention"] == pytest.approx(1 / 3)
    assert [r["week_complete"] for r in w10] == [True, True, True]
    w11 = [got[(D(2026, 3, 9), k)] for k in range(2)]
    assert [(r["cohort_size"], r["retained"]) for r in w11] == [(1, 1), (1, 1)]  # dan: 9th, then 17th
    w12 = got[(D(2026, 3, 16), 0)]
    assert (w12["cohort_size"], w12["retained"]) == (1, 0)      # eve
    assert (D(2026, 3, 16), 1) not in got                       # that week starts after `end`
    assert df["retention"].between(0, 1).all()


def test_retention_reports_incomplete_weeks_and_empty_cohorts(hand_db):
    df = queries.activity.retention_weekly(hand_db.analytics, start="2026-02-16", end="2026-03-11",
                                           tz="UTC", weeks=1)
    got = {(r["cohort_week"], r["weeks_since_signup"]): r for r in df.to_dict("records")}
    assert max(k[1] for k in got) == 1
    empty = got[(D(2026, 2, 16), 0)]
    assert empty["cohort_size"] == 0 and pd.isna(empty["retention"])
    assert not got[(D(2026, 3, 2), 1)]["week_complete"]       # 9..15 March runs past the 11th
    assert got[(D(2026, 3, 2), 0)]["week_complete"]


# -- the seeded demo -----------------------------------------------------------------


@pytest.mark.parametrize("tz", ["UTC", "Asia/Tokyo"])
def test_demo_dau_wau_mau_equal_pandas_recomputation(demo_db, tz):
    end = yesterday(tz)
    start = end - dt.timedelta(days=29)
    jobs = read_table(demo_db.writer, "video_jobs")
    purchases = read_table(demo_db.writer, "purchases")
    users = read_table(demo_db.writer, "users")
    expected = activity_daily(jobs, purchases, users, start, end, tz)
    assert (expected["dau"] > 0).all(), "demo window has days without activity"
    actual = queries.activity.daily(demo_db.analytics, start=start, end=end, tz=tz)
    assert_frames_match(actual, expected)

    s = queries.activity.summary(demo_db.analytics, start=start, end=end, tz=tz).iloc[0]
    last = expected.iloc[-1]
    assert (s["dau"], s["wau"], s["mau"]) == (last["dau"], last["wau"], last["mau"])
    assert s["new_users"] == expected["new_users"].sum()

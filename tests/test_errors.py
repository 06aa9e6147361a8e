"""queries/errors.sql against hand-made rows (empty_db) and the seeded demo (demo_db)."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pandas as pd
import pytest
from support.recompute import assert_frames_match, errors_daily, insert_rows, read_table, wilson, yesterday

import queries

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

UTC = dt.timezone.utc
D = dt.date
USER = uuid.UUID(int=1)
GEN3 = uuid.UUID(int=0x31)      # runway
KLING = uuid.UUID(int=0x32)     # kling
IDLE = uuid.UUID(int=0x33)      # pika: a model with no jobs at all


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(2026, 5, day, hour, minute, second, tzinfo=UTC)


def job(model, when, status="completed", code=None, seconds=None) -> dict:
    provider = {GEN3: "runway", KLING: "kling", IDLE: "pika"}[model]
    row = dict(user_id=USER, model_id=model, provider=provider, status=status, created_at=when,
               error_code=code)
    row["completed_at"] = when + dt.timedelta(seconds=seconds) if seconds is not None else None
    return row


JOBS = [
    # 10 May: 3 finished jobs, 1 failure, plus one still processing (no outcome yet)
    job(GEN3, at(10, 9), seconds=30),
    job(GEN3, at(10, 10), seconds=90),
    job(KLING, at(10, 11), "failed", "ERR_5001", seconds=5),
    job(KLING, at(10, 12), "processing"),
    # 11 May 22:30 UTC: 12 May in Istanbul
    job(GEN3, at(11, 22, 30), "failed", "ERR_5002", seconds=3),
    # 13 May: only pending jobs -> no outcome, NULL rate
    job(GEN3, at(13, 8), "pending"),
    # 14 May: a failure without an error code, and durations for percentiles
    job(KLING, at(14, 8), "failed", None),
    job(KLING, at(14, 9), "failed", "ERR_5001"),
    *[job(GEN3, at(14, 10, i), seconds=s) for i, s in enumerate([10, 20, 30, 40, 100])],
]
ERROR_LOG = [
    *[dict(error_code="ERR_5001", endpoint="/generate", user_id=USER, created_at=at(10, 10, i)) for i in range(4)],
    *[dict(error_code="ERR_4290", endpoint="/generate", user_id=None, created_at=at(10, 11, i)) for i in range(2)],
    *[dict(error_code="ERR_4290", endpoint="/purchase", user_id=USER, created_at=at(10, 12, i)) for i in range(3)],
    dict(error_code="ERR_9999", endpoint="/health", created_at=at(11, 23)),   # 12 May in Istanbul
]


@pytest.fixture(scope="module")
def hand_db(empty_db):
    insert_rows(empty_db.writer, "users", [dict(id=USER, created_at=at(1))])
    insert_rows(empty_db.writer, "models", [
        dict(id=GEN3, name="gen-3", provider="runway", cost_per_generation=10),
        dict(id=KLING, name="kling-1.6", provider="kling", cost_per_generation=20),
        dict(id=IDLE, name="pika-2", provider="pika", cost_per_generation=5),
    ])
    insert_rows(empty_db.writer, "video_jobs", JOBS)
    insert_rows(empty_db.writer, "error_log", ERROR_LOG)
    return empty_db


def _rows(df: pd.DataFrame, *key: str) -> dict:
    return {tuple(r[k] for k in key) if len(key) > 1 else r[key[0]]: r for r in df.to_dict("records")}


def test_three_jobs_one_failure_is_a_third_with_a_wide_interval(hand_db):
    rows = _rows(queries.errors.daily(hand_db.analytics, start="2026-05-10", end="2026-05-10", tz="UTC"), "day")
    d = rows[D(2026, 5, 10)]
    assert (d["jobs"], d["failed"], d["unfinished"]) == (3, 1, 1)
    assert d["error_rate"] == pytest.approx(1 / 3)
    low, high = wilson(1, 3)
    assert d["wilson_low"] == pytest.approx(low, rel=1e-9)
    assert d["wilson_high"] == pytest.approx(high, rel=1e-9)
    # known values for 1 of 3 at 95 %: about 0.061 .. 0.792 -- "33 %" means very little
    assert d["wilson_low"] == pytest.approx(0.0615, abs=1e-3)
    assert d["wilson_high"] == pytest.approx(0.7923, abs=1e-3)


def test_days_without_outcomes_have_null_rate_and_interval(hand_db):
    rows = _rows(queries.errors.daily(hand_db.analytics, start="2026-05-12", end="2026-05-15", tz="UTC"), "day")
    assert list(rows) == [D(2026, 5, d) for d in (12, 13, 14, 15)]
    for day in (D(2026, 5, 12), D(2026, 5, 13), D(2026, 5, 15)):
        r = rows[day]
        assert (r["jobs"], r["failed"]) == (0, 0)
        assert pd.isna(r["error_rate"]) and pd.isna(r["wilson_low"]) and pd.isna(r["wilson_high"])
    assert rows[D(2026, 5, 13)]["unfinished"] == 1
    d14 = rows[D(2026, 5, 14)]
    assert (d14["jobs"], d14["failed"]) == (7, 2)


def test_istanbul_moves_22_30_utc_to_the_next_local_day(hand_db):
    utc = _rows(queries.errors.daily(hand_db.analytics, start="2026-05-11", end="2026-05-12", tz="UTC"), "day")
    ist = _rows(queries.errors.daily(hand_db.analytics, start="2026-05-11", end="2026-05-12",
                                     tz="Europe/Istanbul"), "day")
    assert (utc[D(2026, 5, 11)]["failed"], utc[D(2026, 5, 12)]["failed"]) == (1, 0)
    assert (ist[D(2026, 5, 11)]["failed"], ist[D(2026, 5, 12)]["failed"]) == (0, 1)
    assert ist[D(2026, 5, 12)]["error_rate"] == 1.0


def test_daily_matches_pandas_recomputation_on_hand_rows(hand_db):
    raw = read_table(hand_db.writer, "video_jobs")
    for tz in ("UTC", "Europe/Istanbul", "America/Los_Angeles"):
        actual = queries.errors.daily(hand_db.analytics, start="2026-05-08", end="2026-05-16", tz=tz)
        assert_frames_match(actual, errors_daily(raw, D(2026, 5, 8), D(2026, 5, 16), tz))


def test_by_provider_and_by_model(hand_db):
    prov = _rows(queries.errors.by_provider(hand_db.analytics, start="2026-05-10", end="2026-05-11"),
                 "day", "provider")
    assert len(prov) == 2 * 3                                    # every day x every provider, pika included
    runway, kling = prov[(D(2026, 5, 10), "runway")], prov[(D(2026, 5, 10), "kling")]
    assert (runway["jobs"], runway["failed"], runway["error_rate"]) == (2, 0, 0.0)
    # no failures: the interval starts at 0 (never below) and is still wide with 2 jobs
    assert runway["wilson_low"] == 0.0
    assert runway["wilson_high"] == pytest.approx(wilson(0, 2)[1])
    assert (kling["jobs"], kling["failed"], kling["unfinished"], kling["error_rate"]) == (1, 1, 1, 1.0)
    assert kling["wilson_low"] == pytest.approx(wilson(1, 1)[0])
    assert pd.isna(prov[(D(2026, 5, 10), "pika")]["error_rate"])

    models = _rows(queries.errors.by_model(hand_db.analytics, start="2026-05-14", end="2026-05-14"), "model")
    assert set(models) == {"gen-3", "kling-1.6", "pika-2"}
    assert (models["kling-1.6"]["jobs"], models["kling-1.6"]["failed"]) == (2, 2)
    assert models["kling-1.6"]["provider"] == "kling"
    assert (models["gen-3"]["jobs"], models["gen-3"]["failed"]) == (5, 0)


def test_by_code_keeps_failures_without_a_code(hand_db):
    df = queries.errors.by_code(hand_db.analytics, start="2026-05-01", end="2026-05-31", tz="UTC")
    counts = {(None if pd.isna(c) else c): n for c, n in zip(df["error_code"], df["failed"])}
    assert counts == {"ERR_5001": 2, "ERR_5002": 1, None: 1}
    assert df["share"].sum() == pytest.approx(1.0)
    assert df.iloc[0]["error_code"] == "ERR_5001" and df.iloc[0]["share"] == pytest.approx(0.5)


def test_window_and_window_by_provider(hand_db):
    w = queries.errors.window(hand_db.analytics, since="2026-05-10T00:00:00+00:00",
                              until="2026-05-11T00:00:00+00:00").iloc[0]
    assert (w["jobs"], w["failed"], w["unfinished"]) == (3, 1, 1)
    assert (w["wilson_low"], w["wilson_high"]) == pytest.approx(wilson(1, 3))
    # `until` is exclusive: a window ending at the job's own instant does not see it
    w = queries.errors.window(hand_db.analytics, since="2026-05-11T00:00:00+00:00",
                              until="2026-05-11T22:30:00+00:00").iloc[0]
    assert w["jobs"] == 0 and pd.isna(w["error_rate"]) and pd.isna(w["wilson_low"])
    # an offset other than UTC is honoured: 01:30+03:00 is 22:30 UTC
    w = queries.errors.window(hand_db.analytics, since="2026-05-12T01:30:00+03:00",
                              until="2026-05-12T01:31:00+03:00").iloc[0]
    assert (w["jobs"], w["failed"]) == (1, 1)
    by = _rows(queries.errors.window_by_provider(hand_db.analytics, since="2026-05-10T00:00:00+00:00",
                                                 until="2026-05-15T00:00:00+00:00"), "provider")
    assert set(by) == {"runway", "kling"}
    assert (by["kling"]["jobs"], by["kling"]["failed"]) == (3, 3)
    assert (by["runway"]["jobs"], by["runway"]["failed"]) == (8, 1)
    assert by["runway"]["wilson_high"] == pytest.approx(wilson(1, 8)[1])


def test_error_log_top_codes_and_endpoints(hand_db):
    codes = queries.errors.log_top_codes(hand_db.analytics, start="2026-05-10", end="2026-05-11", tz="UTC")
    assert list(codes["error_code"]) == ["ERR_4290", "ERR_5001", "ERR_9999"]
    assert list(codes["errors"]) == [5, 4, 1]
    assert codes.iloc[0]["users"] == 1                # rows without a user are not a user
    assert codes.iloc[0]["endpoints"] == 2
    assert codes["share"].sum() == pytest.approx(1.0)
    top1 = queries.errors.log_top_codes(hand_db.analytics, start="2026-05-10", end="2026-05-11", limit=1)
    assert list(top1["error_code"]) == ["ERR_4290"]
    assert top1.iloc[0]["share"] == pytest.approx(5 / 10)   # share of all rows, not of those shown
    # the 23:00 UTC row is the 12th in Istanbul
    ist = queries.errors.log_top_codes(hand_db.analytics, start="2026-05-12", end="2026-05-12",
                                       tz="Europe/Istanbul")
    assert list(ist["error_code"]) == ["ERR_9999"]

    eps = queries.errors.log_top_endpoints(hand_db.analytics, start="2026-05-10", end="2026-05-11", tz="UTC")
    assert list(eps["endpoint"]) == ["/generate", "/purchase", "/health"]
    assert list(eps["errors"]) == [6, 3, 1]
    assert eps.iloc[0]["top_code"] == "ERR_5001" and eps.iloc[0]["codes"] == 2


def test_durations_percentiles(hand_db):
    rows = _rows(queries.errors.durations(hand_db.analytics, start="2026-05-10", end="2026-05-14", tz="UTC"), "day")
    d14 = rows[D(2026, 5, 14)]
    secs = [10, 20, 30, 40, 100]
    assert d14["completed"] == 5
    assert d14["p50_seconds"] == pytest.approx(np.percentile(secs, 50))   # linear = percentile_cont
    assert d14["p95_seconds"] == pytest.approx(np.percentile(secs, 95))
    assert d14["max_seconds"] == 100
    d10 = rows[D(2026, 5, 10)]                        # only completed jobs: the failed one's 5 s is not a delivery
    assert d10["completed"] == 2 and d10["p50_seconds"] == pytest.approx(60)
    for day in (D(2026, 5, 11), D(2026, 5, 12), D(2026, 5, 13)):
        assert rows[day]["completed"] == 0 and pd.isna(rows[day]["p50_seconds"]) and pd.isna(rows[day]["p95_seconds"])


# -- the seeded demo -----------------------------------------------------------------


@pytest.mark.parametrize("tz", ["UTC", "Europe/Istanbul"])
def test_demo_error_rate_equals_pandas_recomputation(demo_db, tz):
    end = yesterday(tz)
    start = end - dt.timedelta(days=29)
    raw = read_table(demo_db.writer, "video_jobs")
    expected = errors_daily(raw, start, end, tz)
    assert (expected["jobs"] > 0).all() and expected["failed"].sum() > 0, "demo window has too little data"
    assert_frames_match(queries.errors.daily(demo_db.analytics, start=start, end=end, tz=tz), expected)

"""Rollups (ops/data/rollups.py) give the raw queries' answers for every day, also after late rows arrive.

The raw named queries (revenue.daily, activity.daily, errors.daily) are the
reference: they are tested against pandas recomputations in their own test
files. Here the rollup side is read on its own (the state tables only) and
through the combined series readers, day by day over the whole demo history.
"""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import sqlalchemy as sa
from support.recompute import insert_rows
from support.clock import dst_changes, test_now, zone_with_dst_change
from support.fixtures import anchor, today  # noqa: F401 - the shared module fixtures

import queries
from ops.contract import JobContext
from ops.data import rollups

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

ONE = dt.timedelta(days=1)
# A zone far from UTC (day cuts far from UTC midnight) that changes its offset inside the rolled-up
# window, whatever date the suite runs at (test_the_window_holds_a_dst_change says it does).
TZ = zone_with_dst_change(test_now().date() - dt.timedelta(days=155), test_now().date() - dt.timedelta(days=2))


@pytest.fixture(scope="module")
def first_day(demo_db) -> dt.date:
    # a few days before the generated history, so empty leading days are covered too
    return dt.datetime.fromisoformat(demo_db.manifest["window"]["start"]).date() - dt.timedelta(days=40)


@pytest.fixture(scope="module")
def backfilled(demo_db, anchor):
    return rollups.refresh(demo_db.analytics, demo_db.writer, TZ, now=anchor)


def _rolled(name: str, demo_db, start: dt.date, end: dt.date) -> pd.DataFrame:
    """A series read from the state tables only (no raw fallback)."""
    return getattr(queries.load("state/rollups"), f"{name}_series")(demo_db.writer, start=start, end=end, tz=TZ)


DAU_COLUMNS = ["day", "dau", "new_users", "new_active", "returning_active"]


def _raw(name: str, demo_db, start: dt.date, end: dt.date) -> pd.DataFrame:
    if name == "dau":  # the DAU columns of activity.daily
        return queries.activity.daily.raw(demo_db.analytics, start=start, end=end, tz=TZ)[DAU_COLUMNS]
    if name == "durations":
        return queries.errors.durations.raw(demo_db.analytics, start=start, end=end, tz=TZ)
    return getattr(queries.load(name), "daily").raw(demo_db.analytics, start=start, end=end, tz=TZ)


SERIES = ["revenue", "activity", "dau", "errors", "durations"]


def _windows(first_day: dt.date, today: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Windows for the window-wide readers: the whole history, a week, one day, one quiet day before the data."""
    closed = today - ONE
    return [(first_day, closed), (closed - 6 * ONE, closed), (closed, closed), (today - 3 * ONE, today),
            (first_day, first_day)]


def _assert_window_readers_equal_raw(demo_db, first_day: dt.date, today: dt.date) -> None:
    """errors.by_code and activity.summary through the rollups equal the raw queries on every window."""
    for start, end in _windows(first_day, today):
        w = {"start": start, "end": end, "tz": TZ}
        codes = rollups.failure_codes(demo_db.analytics, demo_db.writer, start, end, tz=TZ, today=today)
        raw_codes = queries.errors.by_code.raw(demo_db.analytics, **w)
        pd.testing.assert_frame_equal(codes, raw_codes, check_exact=False, rtol=1e-12)
        summary = rollups.activity_summary(demo_db.analytics, demo_db.writer, start, end, tz=TZ, today=today)
        pd.testing.assert_frame_equal(summary, queries.activity.summary.raw(demo_db.analytics, **w))


def _assert_same(rolled: pd.DataFrame, raw: pd.DataFrame) -> None:
    assert len(raw) > 0
    pd.testing.assert_frame_equal(rolled.reset_index(drop=True), raw.reset_index(drop=True), check_exact=False,
                                  rtol=1e-12)


def _snapshot(demo_db) -> dict[str, pd.DataFrame]:
    tables = ["rollup_revenue_daily", "rollup_jobs_daily", "rollup_user_days", "rollup_signups_daily",
              "rollup_activity_daily", "rollup_durations_daily", "rollup_failure_codes_daily"]
    out = {}
    with demo_db.writer.connect() as c:
        for t in tables:
            df = pd.read_sql_table(t, c, schema="opsbench")
            out[t] = df.sort_values(list(df.columns[:4])).reset_index(drop=True)
    return out


def test_backfill_covers_every_closed_day_and_records_the_watermark(demo_db, backfilled, today):
    assert backfilled.backfill and backfilled.rows_read > 0 and backfilled.rows_changed > 0
    wm = rollups.watermark(demo_db.writer, TZ)
    first_data = min(dt.datetime.fromisoformat(demo_db.manifest["window"]["start"]).astimezone(
        dt.timezone.utc), dt.datetime.fromisoformat(demo_db.manifest["anchor"]))
    assert wm.refreshed_through == today - ONE
    # the generator's users sign up from the window start on; admins may be older
    assert wm.complete_from <= (first_data.astimezone(ZoneInfo(TZ))).date()
    assert wm.last_from == wm.complete_from
    assert wm.last_rows_changed == backfilled.rows_changed


def test_the_window_holds_a_dst_change(first_day, today):
    """What the equality tests below rely on to cover a 23- or 25-hour local day."""
    assert dst_changes(TZ, first_day, today - ONE), (TZ, first_day, today)


@pytest.mark.parametrize("name", SERIES)
def test_rollups_equal_raw_for_every_day(demo_db, backfilled, name, first_day, today):
    closed = today - ONE
    _assert_same(_rolled(name, demo_db, first_day, closed), _raw(name, demo_db, first_day, closed))


@pytest.mark.parametrize("name", SERIES)
def test_series_combine_rollups_and_today(demo_db, backfilled, name, first_day, today):
    series = getattr(rollups, f"{name}_series")(demo_db.analytics, demo_db.writer, first_day, today, tz=TZ, today=today)
    _assert_same(series, _raw(name, demo_db, first_day, today))
    assert series["day"].iloc[-1] == today


def test_failure_codes_and_summary_from_rollups_equal_raw(demo_db, backfilled, first_day, today):
    codes = rollups.failure_codes(demo_db.analytics, demo_db.writer, first_day, today - ONE, tz=TZ, today=today)
    assert len(codes) > 1 and codes["failed"].sum() > 0
    _assert_window_readers_equal_raw(demo_db, first_day, today)


def test_todays_wau_mau_from_stored_user_days_read_only_todays_raw_rows(demo_db, backfilled, today):
    """activity_series' open day: its own user-days from raw, the 29-day look-back from the rollups."""
    seen: list[tuple[str, dict]] = []

    def spy(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement, parameters))

    start = today - 40 * ONE
    sa.event.listen(demo_db.analytics, "before_cursor_execute", spy)
    try:
        series = rollups.activity_series(demo_db.analytics, demo_db.writer, start, today, tz=TZ, today=today)
    finally:
        sa.event.remove(demo_db.analytics, "before_cursor_execute", spy)
    raw_reads = [(sql, p) for sql, p in seen if "video_jobs" in sql]
    assert raw_reads and all("lo_ext" not in sql for sql, _ in raw_reads)       # not activity.daily's 29-day read
    assert all(p["start"] == today and p["end"] == today for _, p in raw_reads)  # today's rows only
    _assert_same(series, _raw("activity", demo_db, start, today))
    assert series["wau"].iloc[-1] > series["dau"].iloc[-1] > 0


def test_several_open_days_after_downtime_lean_on_the_stored_user_days(demo_db, backfilled, anchor, first_day):
    """A zone refreshed 4 days ago: its last 4 days and today are read raw, their WAU/MAU from the rollups."""
    zone = "Europe/Berlin"
    rollups.refresh(demo_db.analytics, demo_db.writer, zone, now=anchor - 4 * ONE)
    today = rollups.local_today(zone, anchor)
    assert rollups.watermark(demo_db.writer, zone).refreshed_through == today - 5 * ONE
    series = rollups.activity_series(demo_db.analytics, demo_db.writer, first_day, today, tz=zone, today=today)
    raw = queries.activity.daily.raw(demo_db.analytics, start=first_day, end=today, tz=zone)
    _assert_same(series, raw)
    rollups.forget(demo_db.writer, zone)


def test_series_fall_back_to_raw_for_a_zone_never_rolled_up(demo_db, backfilled, today):
    series = rollups.revenue_series(demo_db.analytics, demo_db.writer, today - 10 * ONE, today, tz="Asia/Tokyo", today=today)
    raw = queries.revenue.daily.raw(demo_db.analytics, start=today - 10 * ONE, end=today, tz="Asia/Tokyo")
    _assert_same(series, raw)


def test_second_refresh_changes_nothing(demo_db, backfilled, anchor):
    before = _snapshot(demo_db)
    again = rollups.refresh(demo_db.analytics, demo_db.writer, TZ, now=anchor)
    assert not again.backfill and again.rows_read > 0
    assert again.rows_changed == 0
    after = _snapshot(demo_db)
    for table in before:
        pd.testing.assert_frame_equal(after[table], before[table])
    assert rollups.watermark(demo_db.writer, TZ).last_rows_changed == 0


def _local(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=ZoneInfo(TZ))


def test_late_rows_for_closed_days_land_after_a_refresh(demo_db, backfilled, anchor, today, first_day):
    late_day = today - 2 * ONE
    with demo_db.writer.connect() as c:
        users = sa.Table("users", sa.MetaData(), autoload_with=c)
        jobs = sa.Table("video_jobs", sa.MetaData(), autoload_with=c)
        purchases = sa.Table("purchases", sa.MetaData(), autoload_with=c)
        models = sa.Table("models", sa.MetaData(), autoload_with=c)
        quiet_user = c.execute(sa.select(users.c.id).order_by(users.c.created_at).limit(1)).scalar_one()
        model = c.execute(sa.select(models.c.id, models.c.provider).limit(1)).one()
        a_purchase = c.execute(sa.select(purchases.c.id).where(purchases.c.environment == "Production",
                                                               purchases.c.refunded_at.is_(None))
                               .order_by(purchases.c.purchased_at.desc()).limit(1)).scalar_one()
        a_job = c.execute(sa.select(jobs.c.id).where(jobs.c.status == "completed",
                                                     jobs.c.created_at < _local(late_day, 0))
                          .order_by(jobs.c.created_at.desc()).limit(1)).scalar_one()
    new_user = uuid.uuid4()
    insert_rows(demo_db.writer, "users", [dict(id=new_user, email="late@example.com", created_at=_local(late_day, 9))])
    insert_rows(demo_db.writer, "purchases", [dict(
        transaction_id="late-1", user_id=new_user, product_id="credits_100", credits=100, price=4.99,
        currency="USD", environment="Production", purchased_at=_local(late_day, 10))])
    insert_rows(demo_db.writer, "video_jobs", [dict(
        user_id=quiet_user, model_id=model.id, provider=model.provider, status="failed", credits_used=0,
        created_at=_local(late_day, 11), completed_at=_local(late_day, 11))])
    with demo_db.writer.begin() as c:
        c.execute(purchases.update().where(purchases.c.id == a_purchase).values(refunded_at=_local(late_day, 12)))
        c.execute(jobs.update().where(jobs.c.id == a_job).values(status="failed"))

    closed = today - ONE
    # the rollups are stale now: proves the comparison below can fail
    for name in SERIES:
        assert not _rolled(name, demo_db, first_day, closed).equals(_raw(name, demo_db, first_day, closed)), name
    w = {"start": late_day, "end": late_day, "tz": TZ}
    stale = rollups.failure_codes(demo_db.analytics, demo_db.writer, late_day, late_day, tz=TZ, today=today)
    assert not stale.equals(queries.errors.by_code.raw(demo_db.analytics, **w))
    assert queries.errors.by_code.raw(demo_db.analytics, **w)["error_code"].isna().any()   # the late failure has no code
    stale = rollups.activity_summary(demo_db.analytics, demo_db.writer, late_day, late_day, tz=TZ, today=today)
    assert not stale.equals(queries.activity.summary.raw(demo_db.analytics, **w))

    result = rollups.refresh(demo_db.analytics, demo_db.writer, TZ, now=anchor, days=3)
    assert result.start == today - 3 * ONE and result.rows_changed > 0
    for name in SERIES:
        _assert_same(_rolled(name, demo_db, first_day, closed), _raw(name, demo_db, first_day, closed))
    _assert_window_readers_equal_raw(demo_db, first_day, today)
    assert rollups.refresh(demo_db.analytics, demo_db.writer, TZ, now=anchor, days=3).rows_changed == 0


def test_a_refresh_after_downtime_catches_up_from_the_watermark(demo_db, backfilled, anchor, today, first_day):
    later = anchor + dt.timedelta(days=5)
    result = rollups.refresh(demo_db.analytics, demo_db.writer, TZ, now=later, days=1)
    assert result.start == today  # from the day after the previous watermark, not just the last day
    assert result.end == rollups.local_today(TZ, later) - ONE
    assert rollups.watermark(demo_db.writer, TZ).refreshed_through == result.end
    closed = result.end
    for name in ("revenue", "activity", "errors"):
        _assert_same(_rolled(name, demo_db, first_day, closed), _raw(name, demo_db, first_day, closed))


def test_the_daemon_job_refreshes_the_report_zone(demo_db, backfilled, anchor):
    from jobs.rollups import refresh

    settings = demo_db.settings.model_copy(update={"report_tz": "Europe/Istanbul"})
    ctx = JobContext(settings=settings, job_id="rollups", run_id="r1", args={"days": 2}, clock=lambda: anchor)
    result = refresh(ctx)
    assert result.status == "ok" and "Europe/Istanbul: backfilled" in result.summary
    assert result.metrics["rows_changed"] > 0
    wm = rollups.watermark(demo_db.writer, "Europe/Istanbul")
    assert wm.refreshed_through == rollups.local_today("Europe/Istanbul", anchor) - ONE


def test_forget_drops_a_zone_and_the_next_refresh_backfills_it_again(demo_db, backfilled, anchor, today, first_day):
    assert rollups.forget(demo_db.writer, "Europe/Istanbul") >= 0
    assert rollups.forget(demo_db.writer, TZ) > 0
    assert rollups.watermark(demo_db.writer, TZ) is None
    again = rollups.refresh(demo_db.analytics, demo_db.writer, TZ, now=anchor)
    assert again.backfill
    _assert_same(_rolled("activity", demo_db, first_day, today - ONE), _raw("activity", demo_db, first_day, today - ONE))

"""Reports and notebooks read the daily rollups for closed days, the raw tables for everything else.

How it is shown: on a fresh copy of the demo database (no rollups yet) the
report's series and the notebook helpers' series equal the raw named queries.
After `ops.data.rollups.refresh` they still do, and after one rollup row per table
is deliberately falsified (a test-only write to the state database) they show
the falsified numbers for that closed day and the raw numbers elsewhere:
proof that they read the rollups, not the raw tables. The expected numbers
for the falsified day are an independent pandas recomputation
(tests/recompute.py) plus the falsification; the raw named queries (checked
against the same recomputations in their own tests) are the reference for
whole frames. A refresh repairs the falsified rows.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa
from conftest import settings_for
from support.fixtures import anchor, today  # noqa: F401 - the shared module fixtures
from support.recompute import errors_daily, read_table, revenue_daily

import queries
from ops import notebook as nb
from ops.core.settings import load_settings
from ops.data import rollups
from ops.reports import figures as report

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

TZ = "Europe/Istanbul"
ONE = dt.timedelta(days=1)
GROSS_BUMP, DAU_BUMP, FAILED_BUMP, P95_BUMP = 1000, 7, 5, 600.0
BROKEN_URL = "postgresql://nobody@127.0.0.1:1/nothing"


@pytest.fixture(scope="module")
def settings(demo_db, pg_home):
    return settings_for(pg_home, demo_db.url, REPORT_TZ=TZ)


@pytest.fixture(scope="module")
def day(today) -> dt.date:
    """The report's day: closed, inside the refresh's last 3 days (so a refresh repairs it)."""
    return today - 2 * ONE


@pytest.fixture
def notebook_settings(monkeypatch, settings):
    """ops.notebook as a kernel would see it with DATABASE_URL / OPSBENCH_STATE_URL set to the test database."""
    monkeypatch.setattr(nb, "_settings", settings)
    monkeypatch.setattr(nb, "_unreachable", {})
    return settings


def _daily(demo_db, window: report.Window) -> dict[str, pd.DataFrame]:
    w = {"start": window.start, "end": window.end, "tz": window.tz}
    return {"revenue": queries.revenue.daily.raw(demo_db.analytics, **w),
            "activity": queries.activity.daily.raw(demo_db.analytics, **w),
            "errors": queries.errors.daily.raw(demo_db.analytics, **w)}


def _same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Equal columns, dtypes and values (floats to 1e-12 relative: the rollups sum in another order)."""
    assert len(expected) > 0
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True),
                                  check_exact=False, rtol=1e-12)


def _build(demo_db, settings, day, now=None, state="writer") -> report.Report:
    engine = demo_db.writer if state == "writer" else state
    return report.build(demo_db.analytics, settings, "daily", window=report.Window(day, day, TZ), state=engine, now=now)


def _assert_report_is_raw(demo_db, rep: report.Report) -> None:
    raw = _daily(demo_db, rep.chart_window)
    for name in ("revenue", "activity", "errors"):
        _same(rep.series[name], raw[name])


def _assert_helpers_are_raw(demo_db, start: dt.date, end: dt.date) -> None:
    w = {"start": start, "end": end, "tz": TZ}
    _same(nb.revenue_series(start, end, TZ), queries.revenue.daily.raw(demo_db.analytics, **w))
    _same(nb.activity_series(start, end, TZ), queries.activity.daily.raw(demo_db.analytics, **w))
    _same(nb.dau_series(start, end, TZ), queries.activity.daily.raw(demo_db.analytics, **w)[
        ["day", "dau", "new_users", "new_active", "returning_active"]])
    _same(nb.errors_series(start, end, TZ), queries.errors.daily.raw(demo_db.analytics, **w))


# -- before any refresh: raw answers -----------------------------------------------------------

def test_without_rollups_reports_and_notebooks_read_raw(demo_db, settings, notebook_settings, day, anchor):
    # a state store the daemon never set up: no opsbench tables at all
    with demo_db.writer.connect() as c:
        assert not sa.inspect(c).has_table("rollup_watermarks", schema="opsbench")
    assert rollups.readable(demo_db.writer, TZ) == (None, None)
    _assert_report_is_raw(demo_db, _build(demo_db, settings, day, now=anchor))
    _assert_helpers_are_raw(demo_db, day - 40 * ONE, day + ONE)
    assert nb.series_source(TZ) == f"daily series: raw tables (no rollups for {TZ} yet)"

    # migrated but never refreshed: still raw
    rollups.state_store.migrate(demo_db.writer)
    assert rollups.readable(demo_db.writer, TZ) == (None, None)
    _assert_report_is_raw(demo_db, _build(demo_db, settings, day, now=anchor))
    _assert_helpers_are_raw(demo_db, day - 40 * ONE, day + ONE)


# -- after a refresh: rollups for closed days -----------------------------------------------------

@pytest.fixture(scope="module")
def refreshed(demo_db, anchor):
    result = rollups.refresh(demo_db.analytics, demo_db.writer, TZ, now=anchor)
    assert result.backfill and result.end == rollups.local_today(TZ, anchor) - ONE
    return result


def test_after_a_refresh_the_answers_are_still_the_raw_answers(demo_db, settings, notebook_settings, refreshed, day,
                                                               anchor, today):
    rep = _build(demo_db, settings, day, now=anchor)
    _assert_report_is_raw(demo_db, rep)
    # the days the report reads are all covered by the rollups (so the equality above is a real comparison)
    assert rollups.rolled_range(rollups.watermark(demo_db.writer, TZ), rep.chart_window.start, rep.chart_window.end,
                                today) == (rep.chart_window.start, rep.chart_window.end)
    _assert_helpers_are_raw(demo_db, day - 40 * ONE, today)
    wm = rollups.watermark(demo_db.writer, TZ)
    assert wm.refreshed_through == today - ONE
    assert nb.series_source(TZ) == (f"daily series: rollups for {wm.complete_from} .. {today - ONE} ({TZ}), "
                                    "raw tables for other days")


def _tables(demo_db) -> dict[str, sa.Table]:
    meta = sa.MetaData()
    return {name: sa.Table(name, meta, schema="opsbench", autoload_with=demo_db.writer)
            for name in ("rollup_revenue_daily", "rollup_activity_daily", "rollup_jobs_daily",
                         "rollup_durations_daily", "rollup_failure_codes_daily")}


@pytest.fixture
def falsified(demo_db, refreshed, anchor, day, today):
    """One rollup row per series made wrong for `day`; a fake rollup row for today (never read).

    Undone afterwards: the fake row deleted, the rest repaired by a refresh.
    """
    t = _tables(demo_db)
    rev, act, jobs = t["rollup_revenue_daily"], t["rollup_activity_daily"], t["rollup_jobs_daily"]
    with demo_db.writer.begin() as c:
        n = c.execute(rev.update().where(rev.c.tz == TZ, rev.c.day == day, rev.c.currency == "USD")
                      .values(gross=rev.c.gross + GROSS_BUMP)).rowcount
        assert n == 1
        assert c.execute(act.update().where(act.c.tz == TZ, act.c.day == day)
                         .values(dau=act.c.dau + DAU_BUMP)).rowcount == 1
        one = c.execute(sa.select(jobs.c.provider, jobs.c.model_id)
                        .where(jobs.c.tz == TZ, jobs.c.day == day).limit(1)).one()
        assert c.execute(jobs.update().where(jobs.c.tz == TZ, jobs.c.day == day, jobs.c.provider == one.provider,
                                             jobs.c.model_id == one.model_id)
                         .values(jobs=jobs.c.jobs + FAILED_BUMP, failed=jobs.c.failed + FAILED_BUMP)).rowcount == 1
        dur, codes = t["rollup_durations_daily"], t["rollup_failure_codes_daily"]
        assert c.execute(dur.update().where(dur.c.tz == TZ, dur.c.day == day)
                         .values(p95_seconds=dur.c.p95_seconds + P95_BUMP)).rowcount == 1
        top = c.execute(sa.select(codes.c.provider, codes.c.error_code).where(codes.c.tz == TZ, codes.c.day == day)
                        .order_by(codes.c.failed.desc()).limit(1)).one()
        assert c.execute(codes.update().where(codes.c.tz == TZ, codes.c.day == day, codes.c.provider == top.provider,
                                              codes.c.error_code.is_not_distinct_from(top.error_code))
                         .values(failed=codes.c.failed + 10 * FAILED_BUMP)).rowcount == 1
        # a row the rollups must never hold (today is open): readers ignore it
        c.execute(rev.insert().values(tz=TZ, day=today, currency="USD", gross=99999, refunds=0, purchases=1,
                                      refunded_purchases=0, paying_users=1, credits_sold=1))
    yield
    with demo_db.writer.begin() as c:
        c.execute(rev.delete().where(rev.c.tz == TZ, rev.c.day == today))
    rollups.refresh(demo_db.analytics, demo_db.writer, TZ, now=anchor)


@pytest.fixture(scope="module")
def expected(demo_db, day) -> dict[str, pd.Series]:
    """`day` recomputed in pandas from the raw tables, not falsified."""
    purchases, jobs = read_table(demo_db.writer, "purchases"), read_table(demo_db.writer, "video_jobs")
    return {"revenue": revenue_daily(purchases, day, day, TZ).iloc[0],
            "errors": errors_daily(jobs, day, day, TZ).iloc[0]}


def _row(df: pd.DataFrame, day: dt.date) -> pd.Series:
    rows = df[pd.to_datetime(df["day"]).dt.date == day]
    assert len(rows) == 1
    return rows.iloc[0]


def _others(df: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    return df[pd.to_datetime(df["day"]).dt.date != day].reset_index(drop=True)


def test_the_report_reads_the_rollups_for_closed_days(demo_db, settings, falsified, expected, day, anchor):
    rep = _build(demo_db, settings, day, now=anchor)
    rev, err = expected["revenue"], expected["errors"]
    assert rep.figures["gross"].value == pytest.approx(rev["gross"] + GROSS_BUMP)
    assert rep.figures["net"].value == pytest.approx(rev["net"] + GROSS_BUMP)
    assert rep.figures["failed"].value == err["failed"] + FAILED_BUMP
    assert rep.figures["jobs"].value == err["jobs"] + FAILED_BUMP
    raw = _daily(demo_db, rep.chart_window)
    assert rep.figures["dau"].value == _row(raw["activity"], day)["dau"] + DAU_BUMP
    w = {"start": day, "end": day, "tz": TZ}
    raw_p95 = queries.errors.durations.raw(demo_db.analytics, **w)["p95_seconds"].iloc[0]
    assert rep.figures["p95_seconds"].value == pytest.approx(raw_p95 + P95_BUMP)
    raw_codes = queries.errors.by_code.raw(demo_db.analytics, **w)
    assert rep.failure_codes[0].count == raw_codes["failed"].iloc[0] + 10 * FAILED_BUMP
    # every other day of the chart window is the raw answer
    for name in ("revenue", "activity", "errors"):
        _same(_others(rep.series[name], day), _others(raw[name], day))

    # with the state store out of reach the same report reads the raw tables
    broken = sa.create_engine(BROKEN_URL.replace("postgresql:", "postgresql+psycopg:"),
                              connect_args={"connect_timeout": 2})
    unreachable = _build(demo_db, settings, day, now=anchor, state=broken)
    assert unreachable.figures["gross"].value == pytest.approx(rev["gross"])
    assert unreachable.figures["failed"].value == err["failed"]
    assert unreachable.figures["p95_seconds"].value == pytest.approx(raw_p95)
    assert unreachable.failure_codes[0].count == raw_codes["failed"].iloc[0]
    _assert_report_is_raw(demo_db, unreachable)


def test_the_default_query_api_reads_the_rollups_for_closed_days(demo_db, falsified, day, today):
    """queries.<series>(engine) with an engine opsbench made reads closed days from the rollups, today raw;
    through a Connection, or .raw(), it reads the raw tables."""
    start = day - 3 * ONE
    w = {"start": start, "end": today, "tz": TZ}
    raw_act = queries.activity.daily.raw(demo_db.analytics, **w)
    act = queries.activity.daily(demo_db.analytics, **w)
    assert _row(act, day)["dau"] == _row(raw_act, day)["dau"] + DAU_BUMP
    _same(_others(act, day), _others(raw_act, day))                 # today too (its WAU/MAU from stored days)
    dur = queries.errors.durations(demo_db.analytics, **w)
    raw_dur = queries.errors.durations.raw(demo_db.analytics, **w)
    assert _row(dur, day)["p95_seconds"] == pytest.approx(_row(raw_dur, day)["p95_seconds"] + P95_BUMP)
    _same(_others(dur, day), _others(raw_dur, day))
    rev = queries.revenue.daily(demo_db.analytics, **w)
    assert _row(rev, today)["gross"] == pytest.approx(_row(queries.revenue.daily.raw(demo_db.analytics, **w), today)["gross"])
    with demo_db.analytics.connect() as c:
        _same(queries.activity.daily(c, **w), raw_act)
    # a window without the falsified day is the raw answer, whole
    later = {"start": day + ONE, "end": today, "tz": TZ}
    for q in (queries.revenue.daily, queries.errors.daily, queries.errors.durations, queries.errors.by_code):
        _same(q(demo_db.analytics, **later), q.raw(demo_db.analytics, **later))


def test_the_notebook_helpers_read_the_rollups_for_closed_days_and_raw_for_today(
        demo_db, notebook_settings, falsified, expected, day, today):
    start = day - 5 * ONE
    w = {"start": start, "end": today, "tz": TZ}
    raw_rev, raw_act = queries.revenue.daily.raw(demo_db.analytics, **w), queries.activity.daily.raw(demo_db.analytics, **w)
    raw_err = queries.errors.daily.raw(demo_db.analytics, **w)

    revenue = nb.revenue_series(start, today, TZ)
    assert _row(revenue, day)["gross"] == pytest.approx(expected["revenue"]["gross"] + GROSS_BUMP)
    assert _row(revenue, today)["gross"] == pytest.approx(_row(raw_rev, today)["gross"])  # not the fake 99999
    _same(_others(revenue, day), _others(raw_rev, day))

    activity = nb.activity_series(start, today, TZ)
    assert _row(activity, day)["dau"] == _row(raw_act, day)["dau"] + DAU_BUMP
    _same(_others(activity, day), _others(raw_act, day))
    assert _row(nb.dau_series(start, today, TZ), day)["dau"] == _row(raw_act, day)["dau"] + DAU_BUMP

    errors = nb.errors_series(start, today, TZ)
    assert _row(errors, day)["failed"] == expected["errors"]["failed"] + FAILED_BUMP
    _same(_others(errors, day), _others(raw_err, day))


def test_notebook_helpers_read_raw_when_the_state_store_is_unreachable(demo_db, monkeypatch, pg_home, falsified,
                                                                       expected, day):
    s = load_settings(DATABASE_URL=demo_db.url, OPSBENCH_STATE_URL=BROKEN_URL, OPSBENCH_HOME=str(pg_home),
                      REPORT_TZ=TZ)
    monkeypatch.setattr(nb, "_settings", s)
    monkeypatch.setattr(nb, "_unreachable", {})
    assert nb.rollup_state(TZ) is None
    assert nb.series_source(TZ) == "daily series: raw tables (state store not reachable)"
    revenue = nb.revenue_series(day - 3 * ONE, day, TZ)
    assert _row(revenue, day)["gross"] == pytest.approx(expected["revenue"]["gross"])
    _assert_helpers_are_raw(demo_db, day - 3 * ONE, day)


def test_a_refresh_repairs_falsified_rollups(demo_db, settings, notebook_settings, falsified, anchor, day, today):
    result = rollups.refresh(demo_db.analytics, demo_db.writer, TZ, now=anchor)
    assert result.start <= day and result.rows_changed >= 3
    _assert_report_is_raw(demo_db, _build(demo_db, settings, day, now=anchor))
    _assert_helpers_are_raw(demo_db, day - 10 * ONE, today)


# -- the one read path: one decision per call, typed reasons, the backend's identity read once ----------------

def _statements(engine: sa.Engine, needle: str):
    """A list that fills with every statement run on `engine` containing `needle` (until the listener is removed)."""
    seen: list[str] = []

    def listen(conn, cursor, statement, *args):
        if needle in statement:
            seen.append(statement)
    sa.event.listen(engine, "before_cursor_execute", listen)
    return seen, lambda: sa.event.remove(engine, "before_cursor_execute", listen)


def test_a_report_reads_the_backend_identity_once(demo_db, settings, refreshed, day, anchor):
    """Every series, window figure and failure code of a weekly report goes through one decision: the live
    identity (pg_control_system) is read once per build, not once per series."""
    seen, stop = _statements(demo_db.analytics, "pg_control_system")
    try:
        window = report.default_window("weekly", settings, anchor)
        rep = report.build(demo_db.analytics, settings, "weekly", window=window, state=demo_db.writer, now=anchor)
    finally:
        stop()
    assert rep.figures["wau"].value is not None
    assert len(seen) == 1


def test_the_read_path_says_why_with_a_typed_reason(demo_db, settings, refreshed, day, today, pg_home, tmp_path):
    from ops.data import runtime, series
    from ops.data.series import Reason

    rt = runtime.for_settings(settings)
    w = {"start": day - 3 * ONE, "end": day, "tz": TZ}
    p = series.plan(rt, "errors.daily", **w)
    assert p.reason is Reason.ROLLUPS and p.span == (day - 3 * ONE, day) and p.source.reason is Reason.READY
    _same(series.fetch(p), queries.errors.daily.raw(demo_db.analytics, **w))
    assert series.plan(rt, "errors.daily", start=today, end=today, tz=TZ).reason is Reason.NOT_COVERED
    assert series.plan(rt, "activity.summary", start=day, end=today, tz=TZ).reason is Reason.PARTIAL_WINDOW
    assert series.plan(rt, "activity.summary", start=day - ONE, end=day, tz=TZ).reason is Reason.ROLLUPS
    commission = tmp_path / "commission.toml"
    commission.write_text("default = 0.15\n", encoding="utf-8")
    priced = series.plan(rt, "revenue.daily", commission=str(commission), **w)
    assert priced.reason is Reason.PROCEEDS and priced.source.reason is Reason.READY   # proceeds are never rolled up
    _same(series.fetch(priced), queries.revenue.daily.raw(demo_db.analytics, commission=str(commission), **w))
    assert series.plan(rt, "users.profile", user_id="00000000-0000-0000-0000-000000000000").reason \
        is Reason.NOT_A_SERIES
    assert series.check(demo_db.analytics, None, TZ).reason is Reason.NO_STATE_STORE
    assert series.check(demo_db.analytics, demo_db.writer, "Pacific/Chatham").reason is Reason.NO_ROLLUPS

    # the live identity is read once per runtime, whatever the number of calls
    seen, stop = _statements(rt.engine("analytics"), "pg_control_system")
    try:
        for _ in range(3):
            series.read(rt, "errors.daily", **w)
    finally:
        stop()
    assert len(seen) <= 1

    # a store that cannot be reached: UNREACHABLE, remembered, not tried again at once
    broken = runtime.for_settings(load_settings(DATABASE_URL=demo_db.url, OPSBENCH_STATE_URL=BROKEN_URL,
                                                OPSBENCH_HOME=str(pg_home), REPORT_TZ=TZ))
    first = series.source(broken, TZ)
    assert first.reason is Reason.UNREACHABLE and first.detail and broken.state_down.marked
    assert series.source(broken, TZ).detail == "not tried again for a few minutes"
    _same(series.read(broken, "errors.daily", **w), queries.errors.daily.raw(demo_db.analytics, **w))

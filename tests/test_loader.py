"""The named-query loader: parsing, binding and column types of the DataFrames it returns."""

from __future__ import annotations

import pandas as pd
import pytest

import queries
from queries.loader import QueryError, parse_sql_file

SQL = """
-- name: stamps
-- Timestamps, some or all NULL.
-- :param n int = 2   how many rows
SELECT i,
       CASE WHEN i = 1 THEN timestamptz '2026-01-01 22:30+00' END AS sometimes,
       CAST(NULL AS timestamptz)                                  AS never,
       CAST(NULL AS numeric)                                      AS amount
FROM generate_series(1, CAST(:n AS int)) AS i
"""


@pytest.fixture()
def stamps(tmp_path):
    path = tmp_path / "t.sql"
    path.write_text(SQL)
    return parse_sql_file(path)["stamps"]


def test_timestamptz_columns_are_utc_datetimes_even_when_all_null(empty_db, stamps):
    df = stamps(empty_db.analytics)
    assert isinstance(df["never"].dtype, pd.DatetimeTZDtype) and str(df["never"].dt.tz) == "UTC"
    assert df["never"].isna().all()
    assert df["sometimes"].iloc[0] == pd.Timestamp("2026-01-01 22:30", tz="UTC")
    # arithmetic between them works, which object columns of None would refuse
    assert (df["sometimes"] - df["never"]).isna().all()
    assert df["amount"].dtype == "float64"


def test_binding_rejects_unknown_and_malformed(stamps):
    with pytest.raises(QueryError, match="unknown parameter 'x'"):
        stamps.bind(x=1)
    with pytest.raises(QueryError, match="expected a whole number"):
        stamps.bind(n="two")
    assert stamps.bind() == {"n": 2}


def test_a_zone_left_out_is_report_tz_not_utc(monkeypatch):
    """The Python API cuts days where the CLI does: REPORT_TZ, never a silent UTC."""
    from zoneinfo import ZoneInfo

    from ops.core.settings import reset_settings_cache

    q = queries.revenue.daily
    assert q.param("tz").default == "REPORT_TZ"
    monkeypatch.setenv("REPORT_TZ", "Asia/Tokyo")
    reset_settings_cache()
    try:
        assert q.bind(start="2026-11-01", end="2026-11-02")["tz"] == "Asia/Tokyo"
        # a ZoneInfo from the caller goes to SQL as its name
        assert q.bind(start="2026-11-01", end="2026-11-02", tz=ZoneInfo("Europe/Istanbul"))["tz"] == "Europe/Istanbul"
    finally:
        reset_settings_cache()
    every_tz = [p for nq in queries.all_queries(internal=True) for p in nq.params if p.type == "tz"]
    assert every_tz and all(p.default in (None, "REPORT_TZ") for p in every_tz)


def test_a_query_over_many_moments_gives_each_moments_own_frame(demo_db):
    """`over` (the backtest's batch) returns, for every moment, the frame a call at that moment returns:
    same rows in the same order, same columns and dtypes, empty moments included."""
    import datetime as dt

    from queries.loader import Served, serving

    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    moments = [anchor - dt.timedelta(hours=h) for h in (0, 1, 7, 30, 24 * 4000)]  # the last: before any data
    q = queries.load("metrics")
    for query, values in ((q.job_outcomes, {"span": "6h"}), (q.stuck_jobs, {"older_than": "15min"}),
                          (q.negative_balances, {})):
        batch = query.over(demo_db.analytics, moments, **values)
        assert list(batch) == moments
        for m in moments:
            pd.testing.assert_frame_equal(batch[m], query(demo_db.analytics, now=m, **values))
    stuck = q.stuck_jobs.over(demo_db.analytics, moments, older_than="0s")
    assert len(stuck[moments[0]]) and not len(stuck[moments[-1]])   # some moments with rows, one without
    # served answers are used instead of the database, and a question without an answer is noted
    served = Served()
    frame = q.job_outcomes.over(demo_db.analytics, moments[:1], span="1h")[moments[0]]
    served.answers[served.key(q.job_outcomes, q.job_outcomes.bind(span="1h", now=moments[0]))] = frame.iloc[:0]
    with serving(served):
        assert len(q.job_outcomes(demo_db.analytics, span="1h", now=moments[0])) == 0
        q.job_outcomes(demo_db.analytics, span="1h", now=moments[1])
    assert [(a.qualified_name, b["now"]) for a, b in served.asked] == [("metrics.job_outcomes", moments[1])]


def test_internal_subjects_load_by_name_but_are_not_the_founders():
    """opsbench's own SQL (queries/internal/) loads by its one name, and stays out of the founder's subjects."""
    assert {"backend", "backtest", "rollups"} <= set(queries.internal_subjects())
    assert not set(queries.internal_subjects()) & set(queries.subjects())
    assert set(queries.subjects(internal=True)) == set(queries.subjects()) | set(queries.internal_subjects())
    assert queries.get("rollups.dau_days").qualified_name == "rollups.dau_days"
    assert queries.rollups.dau_days is queries.get("rollups.dau_days")
    assert queries.load("state/outbox").queries          # a folder of internal/ by its name
    founders = {q.qualified_name for q in queries.all_queries()}
    assert "revenue.daily" in founders and not [n for n in founders if n.split(".")[0] in queries.internal_subjects()]
    with pytest.raises(QueryError):
        queries.load("internal/rollups")                 # one name per subject, not two spellings

"""The weekly review on the demo (the planted provider spike shows as a grown error code)
and on rows inserted into an empty backend (a new code, an action by a non-admin)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
import sqlalchemy as sa

from jobs import reviews
from ops.contract import JobContext, Severity

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

UTC = dt.timezone.utc


def _ctx(db, at, **args) -> JobContext:
    return JobContext(settings=db.settings, job_id="weekly_review", run_id="r1", args=args, clock=lambda: at)


def test_demo_week_shows_the_spike_code_and_admin_actions(demo_db):
    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    result = reviews.weekly_review(_ctx(demo_db, anchor))
    grown = {(f.labels["source"], f.labels["code"]): f for f in result.findings if f.rule == reviews.SHARE_GREW}
    assert set(grown) == {("error_log", "ERR_5002"), ("video_jobs", "ERR_5002")}  # the spike's code
    assert not [f for f in result.findings if f.rule in (reviews.NEW_CODE, reviews.ADMIN_NOT_ADMIN)]

    jobs = pd.read_sql_table("video_jobs", demo_db.analytics, columns=["status", "error_code", "created_at"])
    failed = jobs[(jobs["status"] == "failed") & (jobs["error_code"] == "ERR_5002")]
    since = anchor - dt.timedelta(days=7)
    recent = int(((failed["created_at"] >= since) & (failed["created_at"] < anchor)).sum())
    before = int(((failed["created_at"] >= since - dt.timedelta(weeks=4)) & (failed["created_at"] < since)).sum())
    row = grown[("video_jobs", "ERR_5002")].evidence[0]
    assert (row["this_week"], row["before"]) == (recent, before)

    actions = pd.read_sql_table("admin_actions", demo_db.analytics, columns=["created_at"])
    in_week = int(((actions["created_at"] >= since) & (actions["created_at"] < anchor)).sum())
    review = [f for f in result.findings if f.rule == reviews.ADMIN_REVIEW]
    assert len(review) == (1 if in_week else 0)
    if in_week:
        assert sum(r["actions"] for r in review[0].evidence) == in_week
        assert review[0].severity is Severity.info
    assert result.rules == {reviews.ADMIN_REVIEW, reviews.ADMIN_NOT_ADMIN, reviews.NEW_CODE, reviews.SHARE_GREW}


def _insert(engine, table, rows):
    t = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(t.insert(), rows)


def test_new_code_and_non_admin_actor(empty_db):
    now = dt.datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    admin, mallory = "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"
    _insert(empty_db.writer, "users", [{"id": admin, "is_admin": True}, {"id": mallory, "is_admin": False}])
    old = [{"error_code": "ERR_4001", "endpoint": "generate-video", "created_at": now - dt.timedelta(days=d)}
           for d in range(8, 30)]
    new = [{"error_code": "ERR_6004", "endpoint": "generate-video", "created_at": now - dt.timedelta(hours=h)}
           for h in range(1, 4)]
    steady = [{"error_code": "ERR_4001", "endpoint": "generate-video", "created_at": now - dt.timedelta(days=d)}
              for d in range(1, 4)]
    _insert(empty_db.writer, "error_log", old + new + steady)
    _insert(empty_db.writer, "admin_actions", [
        {"admin_user_id": admin, "action_type": "credit_refund", "target_user_id": mallory, "amount": 20,
         "reason": "failed job", "created_at": now - dt.timedelta(days=2)},
        {"admin_user_id": mallory, "action_type": "credit_adjustment", "target_user_id": mallory, "amount": 500,
         "reason": "bonus", "created_at": now - dt.timedelta(days=1)},
        {"admin_user_id": admin, "action_type": "user_ban", "target_user_id": mallory, "amount": None,
         "reason": "last month", "created_at": now - dt.timedelta(days=20)},
    ])
    result = reviews.weekly_review(_ctx(empty_db, now))
    by_rule: dict[str, list] = {}
    for f in result.findings:
        by_rule.setdefault(f.rule, []).append(f)
    assert [f.labels for f in by_rule[reviews.NEW_CODE]] == [{"source": "error_log", "code": "ERR_6004"}]
    assert [f.labels for f in by_rule[reviews.ADMIN_NOT_ADMIN]] == [{"actor": mallory[:8]}]
    (review,) = by_rule[reviews.ADMIN_REVIEW]
    assert review.evidence_count == 2 and "520 credits moved" in review.summary  # last month's ban is outside
    assert reviews.SHARE_GREW not in by_rule  # 3 of 6 this week: too few to call a trend


def test_two_proportion_z():
    assert reviews.two_proportion_z(50, 100, 10, 100) > 5
    assert reviews.two_proportion_z(1, 10, 1, 10) == 0
    assert reviews.two_proportion_z(0, 0, 1, 10) == 0


def test_no_baseline_history_means_no_new_codes(empty_db):
    """A fresh backend: every code of the week is 'new' against nothing, so the check is skipped and says so."""
    now = dt.datetime(2026, 6, 1, 8, 0, tzinfo=UTC)  # weeks away from the other tests' rows
    week = [{"error_code": code, "endpoint": "generate-video", "created_at": now - dt.timedelta(hours=h)}
            for h, code in enumerate(["ERR_7001", "ERR_7002", "ERR_7003"] * 5, start=1)]
    _insert(empty_db.writer, "error_log", week)
    fresh = reviews.weekly_review(_ctx(empty_db, now))
    assert [f for f in fresh.findings if f.rule in (reviews.NEW_CODE, reviews.SHARE_GREW)] == []
    assert "skipped for error_log: no errors in the 4 baseline week(s) before" in fresh.summary
    assert fresh.metrics["sources_without_baseline"] == 1
    assert reviews.NEW_CODE not in fresh.rules  # not judged, so earlier alerts are neither raised nor cleared

    # one error in the baseline weeks is history enough: the week's codes are new again
    _insert(empty_db.writer, "error_log", [{"error_code": "ERR_7000", "endpoint": "generate-video",
                                            "created_at": now - dt.timedelta(days=10)}])
    judged = reviews.weekly_review(_ctx(empty_db, now))
    assert {f.labels["code"] for f in judged.findings if f.rule == reviews.NEW_CODE} == {
        "ERR_7001", "ERR_7002", "ERR_7003"}
    assert "skipped" not in judged.summary and reviews.NEW_CODE in judged.rules


def test_baseline_is_judged_per_source():
    df = pd.DataFrame([
        {"source": "error_log", "code": "ERR_1", "recent": 4, "baseline": 0, "recent_total": 4, "baseline_total": 9},
        {"source": "error_log", "code": "ERR_2", "recent": 0, "baseline": 9, "recent_total": 4, "baseline_total": 9},
        {"source": "video_jobs", "code": "ERR_3", "recent": 5, "baseline": 0, "recent_total": 5, "baseline_total": 0},
    ])
    assert reviews.sources_without_baseline(df) == ["video_jobs"]
    found = reviews.review_error_codes(df, growth=2.0, min_count=10, z_limit=3.0, command="c")
    assert [(f.rule, f.labels["code"]) for f in found] == [(reviews.NEW_CODE, "ERR_1")]


def test_bad_arguments_name_the_key():
    for args, key in (({"baseline_weeks": 0}, "args.baseline_weeks"), ({"growth": "lots"}, "args.growth"),
                      ({"min_cuont": 3}, "args.min_cuont: unknown key")):
        with pytest.raises(ValueError, match=key):
            reviews.validate_args(args)
    reviews.validate_args({"days": 7, "baseline_weeks": 4, "growth": 2.0, "min_count": 10})

"""Metric probes on the seeded demo database (planted spike, stuck jobs, negative balance)
and on rows inserted into an empty backend (abuse, rate limits)."""

from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd
import pytest
import sqlalchemy as sa

from jobs import metrics
from jobs.probes import DATABASE_UNREACHABLE
from ops.contract import JobContext, Severity
from ops.core.settings import load_settings

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

UTC = dt.timezone.utc


def _ctx(settings, at: dt.datetime, **args) -> JobContext:
    return JobContext(settings=settings, job_id="metric_probes", run_id="r1", args=args, clock=lambda: at)


@pytest.fixture(scope="module")
def anchor(demo_db) -> dt.datetime:
    return dt.datetime.fromisoformat(demo_db.manifest["anchor"])


@pytest.fixture(scope="module")
def spike_start(demo_db) -> dt.datetime:
    return dt.datetime.fromisoformat(demo_db.manifest["spike"]["local_date"]).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def jobs_frame(demo_db) -> pd.DataFrame:
    return pd.read_sql_table("video_jobs", demo_db.analytics,
                             columns=["id", "provider", "status", "created_at", "completed_at"])


def _recount(jobs: pd.DataFrame, provider: str, now: dt.datetime, span: dt.timedelta) -> tuple[int, int]:
    """(finished, failed) recomputed from the raw rows with pandas."""
    done = jobs[(jobs["provider"] == provider) & jobs["status"].isin(["completed", "failed"])
                & (jobs["completed_at"] >= now - span) & (jobs["completed_at"] < now)]
    return len(done), int((done["status"] == "failed").sum())


def _flagged(result) -> dict:
    return {f.labels["provider"]: f for f in result.findings if f.rule == metrics.ERROR_RATE}


@pytest.fixture(scope="module")
def spike_hours(demo_db, spike_start, jobs_frame) -> dict[int, object]:
    """The real 15 min / 1 h windows at three hours of the spike day, as the daemon judges them."""
    return {hour: metrics.error_rate(_ctx(demo_db.settings, spike_start + dt.timedelta(hours=hour)))
            for hour in (6, 12, 18)}


@pytest.mark.parametrize("hour", [6, 12, 18])
def test_spike_hours_flag_only_the_spike_provider(demo_db, spike_start, jobs_frame, spike_hours, hour):
    # About 15 jobs an hour per provider in the small demo: whether one hour's
    # sample is "above 5 %" at 95 % confidence depends on the draw, so this test
    # pins what does not: no other provider is critical, the evidence is the raw
    # count, and the severity follows the seeds' lines from that evidence.
    # (kling's base rate is 1.5 %, above the 1 % warning line: a warning for it
    # in some hour is a true statement, not a false alarm.)
    at = spike_start + dt.timedelta(hours=hour)
    provider = demo_db.manifest["spike"]["provider"]
    flagged = _flagged(spike_hours[hour])
    assert {p for p, f in flagged.items() if f.severity is Severity.critical} <= {provider}
    assert metrics.ERROR_RATE in spike_hours[hour].rules
    if provider in flagged:
        f = flagged[provider]
        assert f.requires == (DATABASE_UNREACHABLE,)
        by_window = {r["window"]: r for r in f.evidence}
        for window, span in (("15min", dt.timedelta(minutes=15)), ("1h", dt.timedelta(hours=1))):
            assert (by_window[window]["finished"], by_window[window]["failed"]) == _recount(jobs_frame, provider, at, span)
        # fast windows (15 min, 1 h) against the 14.4 % line page, the slow one (6 h) pages above 6 x the
        # 1 % budget and warns above 3 x
        assert {(r["window"], r["severity"], r["limit_pct"]) for r in f.evidence} == {
            ("15min", "critical", 14.4), ("1h", "critical", 14.4), ("6h", "critical", 6.0), ("6h", "warning", 3.0)}

        def over(severity: str) -> bool:
            return any(r["severity"] == severity and r["finished"] >= 3 and r["failed"] >= 3
                       and r["wilson_low_pct"] > r["limit_pct"] for r in f.evidence)

        assert over(f.severity.value)
        assert f.severity is (Severity.critical if over("critical") else Severity.warning)


def test_spike_is_flagged_in_some_sampled_hour(demo_db, spike_hours):
    # a 35 % extra failure rate on ~15 jobs an hour: missed in all three hours
    # only with a probability of about 1e-6
    provider = demo_db.manifest["spike"]["provider"]
    assert any(provider in _flagged(r) for r in spike_hours.values())


def test_spike_day_is_critical_for_its_provider_only(demo_db, spike_start, jobs_frame):
    # over the whole spike day the sample is large enough for a certain verdict
    at = spike_start + dt.timedelta(days=1)
    result = metrics.error_rate(_ctx(demo_db.settings, at, windows=["24h"], slow_windows=[]))
    provider = demo_db.manifest["spike"]["provider"]
    flagged = _flagged(result)
    assert set(flagged) == {provider}
    f = flagged[provider]
    assert f.severity is Severity.critical
    (row,) = f.evidence
    assert (row["finished"], row["failed"]) == _recount(jobs_frame, provider, at, dt.timedelta(days=1))


def test_no_critical_error_rate_outside_the_spike(demo_db, spike_start, anchor, jobs_frame):
    # Healthy providers fail 0.6-1.5 % of jobs. Over an hour of ~15 jobs, two
    # failures put the Wilson lower bound above the 1 % warning line a few hours
    # a day (and kling really is above it), so warnings can occur; the critical
    # line (5 % at 95 % confidence) is not crossed by a healthy hour.
    for at in (anchor, spike_start - dt.timedelta(hours=12), spike_start + dt.timedelta(days=1, hours=12)):
        result = metrics.error_rate(_ctx(demo_db.settings, at))
        assert [f.summary for f in result.findings if f.severity is Severity.critical] == [], at
        assert result.rules == {metrics.ERROR_RATE}
        for f in result.findings:  # any warning is backed by the raw rows
            if f.labels["provider"] != "all":
                hour = {r["window"]: r for r in f.evidence}["1h"]
                assert (hour["finished"], hour["failed"]) == _recount(jobs_frame, f.labels["provider"], at,
                                                                      dt.timedelta(hours=1))


def test_small_samples_do_not_page():
    # the seeds' worry: one failure out of three jobs at 3 a.m.
    assert metrics.wilson_lower(1, 3) < 0.05
    assert metrics.wilson_lower(1, 10) < 0.01  # a healthy 1 % service shows this one time in ten
    assert metrics.wilson_lower(0, 500) == 0.0
    assert metrics.wilson_lower(5, 19) > 0.05
    assert metrics.wilson_lower(50, 100) == pytest.approx(0.399, abs=0.01)  # Newcombe's table: 0.3990


def test_stuck_jobs_are_the_planted_ones(demo_db, anchor):
    result = metrics.stuck_jobs(_ctx(demo_db.settings, anchor))
    (f,) = result.findings
    planted = demo_db.manifest["stuck_jobs"]
    assert f.rule == metrics.STUCK_JOBS and f.evidence_count == planted["count"]
    assert {row["job_id"] for row in f.evidence} == set(planted["job_ids"])
    assert not set(demo_db.manifest["inflight_jobs"]["job_ids"]) & {row["job_id"] for row in f.evidence}
    assert all(row["age_minutes"] >= planted["min_age_minutes"] for row in f.evidence)


def test_negative_balance_is_critical(demo_db, anchor):
    result = metrics.negative_balances(_ctx(demo_db.settings, anchor))
    (f,) = result.findings
    users = demo_db.manifest["fault_ids"]["negative_balance_users"]
    assert f.severity is Severity.critical and f.evidence_count == len(users) == 1
    assert f.evidence[0]["user"] == users[0][:8]


def test_purchases_stopped_against_the_hour_of_week_baseline(demo_db, anchor):
    purchases = pd.read_sql_table("purchases", demo_db.analytics, columns=["environment", "purchased_at"])
    last = purchases.loc[purchases["environment"] == "Production", "purchased_at"].max()

    # the demo data ends at the anchor: right after it, a gap this short is normal
    quiet = metrics.purchases_stopped(_ctx(demo_db.settings, anchor))
    assert quiet.findings == [] and metrics.PURCHASES_STOPPED in quiet.rules
    assert quiet.metrics["minutes_since_last_purchase"] == pytest.approx((anchor - last).total_seconds() / 60)

    # half a day later with no sale: the baseline (about 1-2 an hour) says this is not chance
    later = anchor + dt.timedelta(hours=12)
    (f,) = metrics.purchases_stopped(_ctx(demo_db.settings, later)).findings
    assert f.rule == metrics.PURCHASES_STOPPED and f.severity is Severity.critical
    assert f.evidence[0]["gap_hours"] == pytest.approx((later - last).total_seconds() / 3600, abs=0.01)

    # the floor: however busy the hour, a gap shorter than min_gap never fires
    assert metrics.purchases_stopped(_ctx(demo_db.settings, later, min_gap="24h")).findings == []


def test_metric_probes_runs_every_check_on_the_demo(demo_db, anchor):
    result = metrics.metric_probes(_ctx(demo_db.settings, anchor))
    assert result.status == "ok"
    assert {f.rule for f in result.findings} == {metrics.STUCK_JOBS, metrics.NEGATIVE_BALANCE}
    assert result.rules == {metrics.ERROR_RATE, metrics.STUCK_JOBS, metrics.NEGATIVE_BALANCE,
                            metrics.PURCHASES_STOPPED, metrics.HIGH_USAGE, metrics.RATE_LIMIT_NEAR}
    assert all(f.requires == (DATABASE_UNREACHABLE,) for f in result.findings)


def test_unreachable_database_skips_without_evaluating(empty_db):
    settings = load_settings(DATABASE_URL="postgresql://u:pw@127.0.0.1:1/x", OPSBENCH_STATE_URL=empty_db.url)
    result = metrics.metric_probes(_ctx(settings, dt.datetime(2026, 1, 1, tzinfo=UTC)))
    assert result.status == "skipped" and result.rules == set() and result.findings == []
    assert DATABASE_UNREACHABLE in result.summary


def test_bad_threshold_is_one_line(demo_db, anchor):
    with pytest.raises(metrics.JobArgError, match="args.stuck_after: expected a duration"):
        metrics.stuck_jobs(_ctx(demo_db.settings, anchor, stuck_after="soon"))


# -- abuse on inserted rows ---------------------------------------------------------------

NOW = dt.datetime(2026, 5, 4, 15, 0, tzinfo=UTC)


def insert_rows(engine: sa.Engine, table: str, rows: list[dict]) -> None:
    """Insert through the reflected table (column types come from the database)."""
    t = sa.Table(table, sa.MetaData(), autoload_with=engine)
    with engine.begin() as conn:
        conn.execute(t.insert(), rows)


def _uid(i: int) -> str:
    return f"{i + 1:08x}-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def abuse_db(empty_db):
    users = pd.DataFrame({"id": [_uid(i) for i in range(31)], "credits_remaining": 100})
    insert_rows(empty_db.writer, "users", users.to_dict("records"))
    model = str(uuid.UUID(int=999))
    insert_rows(empty_db.writer, "models", [{"id": model, "name": "m", "provider": "luma", "cost_per_generation": 5}])
    jobs = []
    for i, uid in enumerate(users["id"]):
        n = 50 if i == 0 else 1 + i % 3  # user 0 is far above everyone else
        jobs += [{"id": str(uuid.uuid4()), "user_id": uid, "model_id": model, "provider": "luma",
                  "status": "completed", "created_at": NOW - dt.timedelta(minutes=1 + (k % 55))} for k in range(n)]
    # yesterday's busy user is not this hour's problem
    jobs += [{"id": str(uuid.uuid4()), "user_id": users["id"][5], "model_id": model, "provider": "luma",
              "status": "completed", "created_at": NOW - dt.timedelta(hours=3)} for _ in range(80)]
    insert_rows(empty_db.writer, "video_jobs", jobs)

    rl = []
    def add(ip, action, count, minutes_ago):
        rl.extend({"ip_address": ip, "action": action, "created_at": NOW - dt.timedelta(minutes=minutes_ago + k % 5)}
                  for k in range(count))
    add("10.0.0.9", "video_generation", 9, 10)     # 90 % of 10/h: near the limit
    add("10.0.0.8", "video_generation", 8, 10)     # exactly 80 %: not above it
    add("10.0.0.7", "video_generation", 12, 90)    # over the limit, but outside the window
    add("10.0.0.66", "credit_purchase", 60, 5)     # far above every other IP
    for i in range(20):
        add(f"10.1.0.{i}", "video_generation", 1 + i % 2, 20)
    insert_rows(empty_db.writer, "rate_limit_log", rl)
    return empty_db


def test_high_usage_and_rate_limit_near(abuse_db):
    # the seeds' "rate limit > 80 %" (the shipped default notes only addresses past the limit)
    result = metrics.abuse(_ctx(abuse_db.settings, NOW, rate_limit_near_pct=80))
    high = {(f.labels["kind"], f.labels["who"]) for f in result.findings if f.rule == metrics.HIGH_USAGE}
    assert high == {("user", _uid(0)[:8]), ("ip", "10.0.0.66")}
    near = [f for f in result.findings if f.rule == metrics.RATE_LIMIT_NEAR]
    assert [(f.labels["ip"], f.labels["action"]) for f in near] == [("10.0.0.9", "video_generation")]
    assert near[0].severity is Severity.info and "90 %" in near[0].summary
    user_f = next(f for f in result.findings if f.labels.get("kind") == "user")
    assert user_f.evidence[0]["count"] == 50


def test_rate_limits_from_args(abuse_db):
    # 12 an 2 h: above 80 % means 10 or more; only 10.0.0.7 (12 requests 90-94 min ago) is
    args = {"rate_limits": {"video_generation": {"max": 12, "window": "2h"}}, "rate_limit_near_pct": 80}
    result = metrics.abuse(_ctx(abuse_db.settings, NOW, **args))
    near = sorted(f.labels["ip"] for f in result.findings if f.rule == metrics.RATE_LIMIT_NEAR)
    assert near == ["10.0.0.7"]

"""Cleanup against real PostgreSQL: the demo's planted expired rows, generated timestamps,
batches and caps, dry runs, a row lock held by another connection, and the guard."""

from __future__ import annotations

import datetime as dt
import hashlib
import time

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

import queries
from jobs import cleanup
from ops.contract import JobContext, Severity
from ops.data.state import migrate

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _ctx(db, at=NOW, dry_run=False, **args) -> JobContext:
    return JobContext(settings=db.settings, job_id="cleanup", run_id=f"run-{time.monotonic_ns()}", args=args,
                      clock=lambda: at, dry_run=dry_run)


def _table(db, name: str) -> sa.Table:
    return sa.Table(name, sa.MetaData(), autoload_with=db.writer)


def _count(db, name: str, where=None) -> int:
    t = _table(db, name)
    stmt = sa.select(sa.func.count()).select_from(t)
    if where is not None:
        stmt = stmt.where(where(t))
    with db.writer.connect() as conn:
        return int(conn.execute(stmt).scalar_one())


def _reset(db, name: str, created: list[dt.datetime]) -> None:
    _fill(db, name, created)


# -- the demo database ------------------------------------------------------------------

def test_demo_dry_run_reports_planted_counts_and_changes_nothing(demo_db):
    migrate(demo_db.writer)
    before = {t: _count(demo_db, t) for t in cleanup.TARGETS}
    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    result = cleanup.cleanup(_ctx(demo_db, at=anchor, dry_run=True))
    faults = demo_db.manifest["faults"]
    assert result.metrics["rate_limit_log_eligible"] == faults["old_rate_limit_rows"]
    assert result.metrics["idempotency_keys_eligible"] == faults["expired_idempotency_keys"]
    assert result.metrics["error_log_eligible"] == faults["old_error_log_rows"]
    assert all(result.metrics[f"{t}_deleted"] == 0 for t in cleanup.TARGETS)
    assert {t: _count(demo_db, t) for t in cleanup.TARGETS} == before
    assert result.findings == [] and result.summary.startswith("DRY RUN")


def test_demo_cleanup_removes_exactly_the_planted_rows(demo_db):
    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    faults = demo_db.manifest["faults"]
    before = {t: _count(demo_db, t) for t in cleanup.TARGETS}
    stuck_before = _count(demo_db, "video_jobs", lambda t: t.c.status.in_(["pending", "processing"]))

    result = cleanup.cleanup(_ctx(demo_db, at=anchor, max_rows=100_000, batch_size=2000))
    assert result.status == "ok", result.summary
    expected = {"rate_limit_log": faults["old_rate_limit_rows"], "idempotency_keys": faults["expired_idempotency_keys"],
                "error_log": faults["old_error_log_rows"]}
    for table, n in expected.items():
        assert result.metrics[f"{table}_deleted"] == n
        assert _count(demo_db, table) == before[table] - n
    # stuck jobs are reported with their ids, never changed
    for job_id in demo_db.manifest["stuck_jobs"]["job_ids"]:
        assert job_id in result.summary
    assert _count(demo_db, "video_jobs", lambda t: t.c.status.in_(["pending", "processing"])) == stuck_before

    again = cleanup.cleanup(_ctx(demo_db, at=anchor))
    assert all(again.metrics[f"{t}_deleted"] == 0 for t in cleanup.TARGETS)

    runs = queries.load("state/probes").cleanup_runs(demo_db.writer, since=anchor - dt.timedelta(minutes=1),
                                                     until=anchor + dt.timedelta(minutes=1))
    real = runs[~runs["dry_run"]]
    assert real.groupby("table_name")["deleted"].sum().to_dict() == expected
    assert not runs["dry_run"].any()  # a dry run records nothing


# -- generated timestamps ---------------------------------------------------------------

offsets = st.lists(st.integers(min_value=-20 * 86400, max_value=20 * 86400), min_size=0, max_size=60)


def _fill(db, table: str, ages: list[dt.datetime]) -> None:
    """Replace the rows of one cleanup table by rows whose age column holds `ages`."""
    t = _table(db, table)
    column = cleanup.TARGETS[table].column
    if table == "rate_limit_log":
        rows = [{"ip_address": "10.0.0.1", "action": "video_generation", column: a} for a in ages]
    elif table == "error_log":
        rows = [{"error_code": "ERR_1", "endpoint": "generate-video", column: a} for a in ages]
    else:  # idempotency_keys: a text key in an order unrelated to expiry (hash), so batches mix ages
        rows = [{"key": hashlib.sha1(f"{i}".encode()).hexdigest(), "endpoint": "generate-video",
                 "created_at": a - dt.timedelta(hours=24), column: a} for i, a in enumerate(ages)]
    with db.writer.begin() as conn:
        conn.execute(sa.delete(t))
        if rows:
            conn.execute(t.insert(), rows)


@pytest.mark.parametrize("table", list(cleanup.TARGETS))
def test_never_deletes_inside_retention(empty_db, table):
    target = cleanup.TARGETS[table]
    cutoff = NOW - target.default_retention  # 7 days, 90 days, expiry itself

    @hsettings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(offsets=offsets, batch=st.integers(1, 25), cap=st.integers(1, 80), dry=st.booleans())
    def check(offsets, batch, cap, dry):
        # include the boundary itself: a row exactly at the cutoff is inside retention
        ages = [cutoff + dt.timedelta(seconds=o) for o in offsets] + [cutoff]
        _fill(empty_db, table, ages)
        old = sum(a < cutoff for a in ages)

        result = cleanup.cleanup(_ctx(empty_db, dry_run=dry, tables=[table], batch_size=batch,
                                      max_rows=cap, max_share=1.0))
        kept = _table(empty_db, table)
        with empty_db.writer.connect() as conn:
            remaining = [r[0] for r in conn.execute(sa.select(kept.c[target.column]))]
        young = sorted(a for a in ages if a >= cutoff)
        assert sorted(a for a in remaining if a >= cutoff) == young  # every row inside retention is still there
        deleted = 0 if dry else min(old, cap)
        assert len(remaining) == len(ages) - deleted
        assert result.metrics[f"{table}_deleted"] == deleted
        assert result.metrics[f"{table}_eligible"] == old

    check()


def test_cap_is_one_budget_for_all_tables_of_a_run(empty_db):
    """max_rows bounds the run, not each table: 3 tables x 60 old rows with max_rows=100 delete 100."""
    for table, target in cleanup.TARGETS.items():
        _fill(empty_db, table, [NOW - target.default_retention - dt.timedelta(hours=1 + i) for i in range(60)]
              + [NOW + dt.timedelta(hours=1 + i) for i in range(60)])
    order = ["rate_limit_log", "error_log", "idempotency_keys"]
    dry = cleanup.cleanup(_ctx(empty_db, dry_run=True, tables=order, batch_size=25, max_rows=100))
    assert "would delete 100 row(s) in all (cap 100 per run" in dry.summary
    assert all(_count(empty_db, t) == 120 for t in order)

    ctx = _ctx(empty_db, tables=order, batch_size=25, max_rows=100)
    result = cleanup.cleanup(ctx)
    assert result.status == "ok", result.summary
    deleted = {t: result.metrics[f"{t}_deleted"] for t in order}
    assert deleted == {"rate_limit_log": 60, "error_log": 40, "idempotency_keys": 0}  # spent in table order
    assert result.metrics["deleted_total"] == 100
    assert sum(120 - _count(empty_db, t) for t in order) == 100
    runs = queries.load("state/probes").cleanup_runs(empty_db.writer, since=NOW - dt.timedelta(minutes=1),
                                                     until=NOW + dt.timedelta(minutes=1))
    this_run = runs[runs["run_id"] == ctx.run_id]
    outcome = dict(zip(this_run["table_name"], this_run["outcome"]))
    assert outcome == {"rate_limit_log": "done", "error_log": "capped", "idempotency_keys": "capped"}

    rest = cleanup.cleanup(_ctx(empty_db, tables=order, batch_size=25, max_rows=100))
    assert {t: rest.metrics[f"{t}_deleted"] for t in order} == {"rate_limit_log": 0, "error_log": 20,
                                                               "idempotency_keys": 60}


def test_batches_and_cap(empty_db):
    _reset(empty_db, "rate_limit_log", [NOW - dt.timedelta(days=8, minutes=i) for i in range(250)]
           + [NOW - dt.timedelta(hours=i) for i in range(50)])
    ctx = _ctx(empty_db, tables=["rate_limit_log"], batch_size=40, max_rows=100, max_share=1.0)
    result = cleanup.cleanup(ctx)
    assert result.metrics["rate_limit_log_deleted"] == 100
    assert _count(empty_db, "rate_limit_log") == 200
    runs = queries.load("state/probes").cleanup_runs(empty_db.writer, since=NOW - dt.timedelta(minutes=1),
                                                     until=NOW + dt.timedelta(minutes=1))
    (last,) = [r for _, r in runs.iterrows() if r["run_id"] == ctx.run_id]
    assert (last["deleted"], last["batches"], last["outcome"]) == (100, 3, "capped")  # 40 + 40 + 20


def test_row_lock_held_elsewhere_fails_cleanly(empty_db):
    _reset(empty_db, "rate_limit_log", [NOW - dt.timedelta(days=9, seconds=i) for i in range(100)])
    t = _table(empty_db, "rate_limit_log")
    with empty_db.writer.connect() as conn:
        ids = sorted(r[0] for r in conn.execute(sa.select(t.c.id)))
    locker = empty_db.writer.connect()
    try:
        locker.begin()
        locker.execute(sa.select(t.c.id).where(t.c.id == ids[60]).with_for_update())  # row of the 2nd batch
        started = time.monotonic()
        result = cleanup.cleanup(_ctx(empty_db, tables=["rate_limit_log"], batch_size=50, lock_timeout_ms=300,
                                      max_share=1.0))
        elapsed = time.monotonic() - started
    finally:
        locker.rollback()
        locker.close()
    assert result.status == "failed"
    assert "lock_timeout" in result.summary
    assert result.metrics["rate_limit_log_deleted"] == 50  # the first batch was committed and stays so
    assert _count(empty_db, "rate_limit_log") == 50
    assert elapsed < 60  # gave up at the 300 ms lock timeout; without it, it would wait for the locker forever


def test_implausible_share_is_refused(empty_db):
    # a clock a year ahead makes every row "old": the guard must stop it
    _reset(empty_db, "rate_limit_log", [NOW - dt.timedelta(hours=i) for i in range(300)])
    future = NOW + dt.timedelta(days=365)
    result = cleanup.cleanup(_ctx(empty_db, at=future, tables=["rate_limit_log"]))
    assert _count(empty_db, "rate_limit_log") == 300
    (f,) = result.findings
    assert f.rule == cleanup.REFUSED and f.labels == {"table": "rate_limit_log"}
    assert f.severity is Severity.warning and f.evidence[0]["eligible"] == 300
    assert result.metrics["rate_limit_log_deleted"] == 0
    # the same data at the right time is fine: nothing old, nothing refused
    assert cleanup.cleanup(_ctx(empty_db, tables=["rate_limit_log"])).findings == []


def test_bad_arguments_are_one_line(empty_db):
    with pytest.raises(cleanup.JobArgError, match="args.batch_size"):
        cleanup.cleanup(_ctx(empty_db, batch_size=0))
    with pytest.raises(cleanup.JobArgError, match="args.tables"):
        cleanup.cleanup(_ctx(empty_db, tables=["users"]))
    with pytest.raises(cleanup.JobArgError, match="args.error_log_retention"):
        cleanup.cleanup(_ctx(empty_db, error_log_retention="forever"))

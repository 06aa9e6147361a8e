"""`opsbench doctor --indexes`: EXPLAIN every named query, print the CREATE INDEX a large seq scan needs."""

from __future__ import annotations

import re

import datetime as dt
import os
import subprocess
import sys

import psycopg
import pytest
from support.clock import clock_env
import sqlalchemy as sa

from ops.workbench.index_doctor import check_indexes
from ops.core.clock import utc_now

STATEMENT = "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_video_jobs_created_at ON video_jobs (created_at);"


def doctor(demo_db) -> subprocess.CompletedProcess:
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
               "DATABASE_URL": demo_db.url, "OPSBENCH_STATE_URL": demo_db.url, "PYTHONWARNINGS": "ignore", **clock_env()}
    return subprocess.run([sys.executable, "-m", "ops", "doctor", "--indexes"], capture_output=True, text=True,
                          env=environ, timeout=300)


def test_all_clear_with_every_declared_index(demo_db):
    proc = doctor(demo_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all clear" in proc.stdout
    assert "CREATE INDEX" not in proc.stdout


def test_a_dropped_index_is_named_and_its_statement_fixes_it(demo_db):
    with demo_db.writer.begin() as conn:
        jobs = sa.Table("video_jobs", sa.MetaData(), autoload_with=conn)
        next(i for i in jobs.indexes if i.name == "idx_video_jobs_created_at").drop(conn)

    proc = doctor(demo_db)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert STATEMENT in proc.stdout.splitlines()
    # the founder's daily series (activity, errors) are among the queries that now read all jobs
    reasons = [line for line in proc.stdout.splitlines() if line.startswith("-- video_jobs")]
    # which queries the plans name depends on the planner; each reason names the queries and the column
    assert reasons and all(re.search(r"read whole by [\w.]+\.\w+", r) for r in reasons), reasons
    assert any("created_at" in r for r in reasons), reasons
    assert "Traceback" not in proc.stderr

    # the printed statement is what a founder pastes into psql: it runs (outside a transaction) and fixes it
    with psycopg.connect(demo_db.url, autocommit=True) as conn:
        conn.execute(STATEMENT)
    again = doctor(demo_db)
    assert again.returncode == 0 and "all clear" in again.stdout


def test_a_partial_index_is_suggested_as_schema_sql_declares_it(demo_db):
    with demo_db.writer.begin() as conn:
        users = sa.Table("users", sa.MetaData(), autoload_with=conn)
        next(i for i in users.indexes if i.name == "idx_users_negative_balance").drop(conn)
    report = check_indexes(demo_db.analytics, today=utc_now().date(), only=["reconciliation.negative_balances"])
    assert [s.statement for s in report.suggestions] == [
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_negative_balance ON users (credits_remaining) "
        "WHERE credits_remaining < 0;"]
    assert report.suggestions[0].queries == ["reconciliation.negative_balances"]

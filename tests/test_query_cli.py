"""`opsbench query` as a user runs it: a real subprocess against a real database."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from support.clock import clock_env, clock_env_at
from support.recompute import insert_rows

import queries

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

PYTHON = Path(sys.executable)
UTC = dt.timezone.utc
USER = uuid.UUID(int=7)


@pytest.fixture(scope="module")
def cli_db(empty_db):
    insert_rows(empty_db.writer, "users", [dict(id=USER, created_at=dt.datetime(2026, 4, 1, tzinfo=UTC))])
    insert_rows(empty_db.writer, "products", [dict(id="credits_100", name="100", credits=100, price=9.99)])
    insert_rows(empty_db.writer, "purchases", [
        dict(transaction_id=f"T{i}", user_id=USER, product_id="credits_100", credits=100, price=9.99,
             currency="USD", environment="Production",
             purchased_at=dt.datetime(2026, 4, 2 + i % 3, 22, 30, tzinfo=UTC)) for i in range(5)
    ])
    return empty_db


def run(db, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
               "DATABASE_URL": db.url, "OPSBENCH_STATE_URL": db.url, "PYTHONWARNINGS": "ignore",
               "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **clock_env(), **env}  # this checkout, not an installed copy
    return subprocess.run([str(PYTHON), "-m", "ops", "query", *args], capture_output=True, text=True,
                          env=environ, timeout=120)


def assert_user_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_list_shows_names_parameters_and_descriptions(cli_db):
    proc = run(cli_db, "--list")
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines()[1:] if line.strip()]
    assert len(rows) == len(queries.all_queries())  # one line per query, none wrapped
    lines = {line.split()[0]: line for line in rows}
    for q in queries.all_queries():
        line = lines[q.qualified_name]
        for p in q.params:
            assert p.name in line
        assert line.rstrip().endswith(q.description)
    # optional parameters and their defaults are shown, not swallowed
    assert "[tz:tz=REPORT_TZ]" in lines["revenue.daily"]
    assert "[currency:text=USD]" in lines["revenue.daily"]
    assert "[limit:int=10]" in lines["errors.log_top_codes"]

    detail = run(cli_db, "--list", "revenue.daily")
    assert detail.returncode == 0
    assert "ISO currency to report" in detail.stdout and "(required)" in detail.stdout


def test_list_shows_no_internal_subject(cli_db):
    """opsbench's own SQL (state store, rollup extraction, backend identity, backtest, seeding, bench,
    doctor, cleanup) lives in queries/internal/ and is not in the founder's list; it still runs by name."""
    internal_dir = Path(queries.__file__).resolve().parent / "internal"
    internal = {p.stem for p in internal_dir.glob("*.sql")} | {p.name for p in internal_dir.iterdir() if p.is_dir()}
    assert {"backend", "backtest", "rollups", "state", "seed"} <= internal   # the listing below is not vacuous
    proc = run(cli_db, "--list")
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.splitlines()[1:] if line.strip()}
    assert listed and not [n for n in listed if n.split(".")[0].split("/")[0] in internal]
    assert {"revenue.daily", "activity.daily", "reconciliation.negative_balances"} <= listed
    # a founder's subject and one of opsbench's never share a name (the loader would pick one silently)
    public = {p.stem for p in internal_dir.parent.glob("*.sql")}
    assert not public & internal
    # hidden, not gone: an internal query still runs by its name
    shown = run(cli_db, "--list", "backend.identity")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("backend.identity:")


def test_csv_matches_the_python_function(cli_db):
    proc = run(cli_db, "revenue.daily", "-p", "start=2026-04-01", "-p", "end=2026-04-06",
               "-p", "tz=Europe/Istanbul", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    got = list(csv.DictReader(io.StringIO(proc.stdout)))
    want = queries.revenue.daily(cli_db.analytics, start="2026-04-01", end="2026-04-06", tz="Europe/Istanbul")
    assert list(got[0].keys()) == list(want.columns)
    assert len(got) == len(want) == 6
    for row, (_, expected) in zip(got, want.iterrows()):
        for col in want.columns:
            e = expected[col]
            if e is None or (isinstance(e, float) and math.isnan(e)):
                assert row[col] == "", (col, row[col])
            elif isinstance(e, (int, float)):
                assert float(row[col]) == pytest.approx(float(e)), col
            else:
                assert row[col] == str(e), col
    # the 22:30 UTC purchases sit on the next Istanbul day
    assert [int(r["purchases"]) for r in got] == [0, 0, 2, 2, 1, 0]


def test_json_and_table_formats(cli_db):
    proc = run(cli_db, "revenue.summary", "-p", "start=2026-04-01", "-p", "end=2026-04-30", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)
    assert row["purchases"] == 5 and row["gross"] == pytest.approx(5 * 9.99)
    assert row["first_day"] == "2026-04-01" and row["paying_users"] == 1

    daily = json.loads(run(cli_db, "errors.daily", "-p", "start=2026-04-01", "-p", "end=2026-04-02",
                           "-f", "json").stdout)
    assert [d["jobs"] for d in daily] == [0, 0] and daily[0]["error_rate"] is None  # NULL -> null, not NaN

    table = run(cli_db, "revenue.summary", "-p", "start=2026-04-01", "-p", "end=2026-04-30")
    assert table.returncode == 0, table.stderr
    header, values = table.stdout.strip().splitlines()[:2]
    assert header.split()[:4] == ["first_day", "last_day", "currency", "gross"]
    assert values.split()[:4] == ["2026-04-01", "2026-04-30", "USD", "49.95"]


def test_tz_comes_from_report_tz_when_not_given(cli_db):
    args = ("revenue.daily", "-p", "start=2026-04-02", "-p", "end=2026-04-03", "-f", "json")
    utc = json.loads(run(cli_db, *args).stdout)
    ist = json.loads(run(cli_db, *args, REPORT_TZ="Europe/Istanbul").stdout)
    assert [d["purchases"] for d in utc] == [2, 2]
    assert [d["purchases"] for d in ist] == [0, 2]


@pytest.mark.parametrize("args, words", [
    (("revenue.nope", "-p", "start=2026-04-01"), ["unknown query", "revenue.nope"]),
    (("nosuchsubject.daily",), ["unknown query"]),
    (("revenue.daily", "-p", "start=2026-04-01", "-p", "end=2026-04-02", "-p", "colour=red"),
     ["unknown parameter", "colour"]),
    (("revenue.daily", "-p", "start=2026-02-30", "-p", "end=2026-04-02"), ["start", "YYYY-MM-DD"]),
    (("revenue.daily", "-p", "start=yesterday", "-p", "end=2026-04-02"), ["start"]),
    (("revenue.daily", "-p", "start=2026-04-01", "-p", "end=2026-04-02", "-p", "tz=Mars/Olympus"), ["tz", "IANA"]),
    (("revenue.daily", "-p", "start=2026-04-01"), ["missing parameter", "end"]),
    (("revenue.daily", "-p", "start=2026-04-05", "-p", "end=2026-04-01"), ["before"]),
    (("revenue.daily", "-p", "start"), ["key=value"]),
    (("errors.log_top_codes", "-p", "start=2026-04-01", "-p", "end=2026-04-02", "-p", "limit=ten"), ["limit"]),
    (("errors.log_top_codes", "-p", "start=2026-04-01", "-p", "end=2026-04-02", "-p", "limit=-1"), ["limit", "0 to"]),
    (("activity.retention_weekly", "-p", "start=2026-04-01", "-p", "end=2026-04-02", "-p", f"weeks={2**63}"),
     ["weeks", "0 to"]),
    (("metrics.stuck_jobs", "-p", "older_than=-2h"), ["older_than", "duration"]),
    (("revenue.daily", "-p", "start=2026-04-01", "-p", "end=2026-04-02", "--format", "xml"), ["xml"]),
])
def test_bad_input_is_one_line_and_exit_2(cli_db, args, words):
    assert_user_error(run(cli_db, *args), *words)


def test_bad_report_tz_setting_is_one_line_and_exit_2(cli_db):
    assert_user_error(run(cli_db, "revenue.daily", "-p", "start=2026-04-01", "-p", "end=2026-04-02",
                          REPORT_TZ="Nowhere/Land"), "REPORT_TZ")


def test_database_failure_is_one_line_without_password(cli_db):
    proc = run(cli_db, "revenue.daily", "-p", "start=2026-04-01", "-p", "end=2026-04-02",
               DATABASE_URL="postgresql://opsbench:hunter2@127.0.0.1:9/nowhere")
    assert proc.returncode != 0
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert "hunter2" not in proc.stderr


INJECTION = "2026-01-01'; DROP TABLE users; --"


def _users_count(db) -> int:
    users = sa.Table("users", sa.MetaData(), autoload_with=db.writer)
    with db.writer.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one()


def test_sql_in_a_value_is_rejected_or_bound_never_executed(cli_db):
    before = _users_count(cli_db)
    # typed parameter: rejected before anything reaches the database
    assert_user_error(run(cli_db, "revenue.daily", "-p", f"start={INJECTION}", "-p", "end=2026-04-02"), "start")
    # text parameter: bound as a value, so it is just a currency nobody paid in
    proc = run(cli_db, "revenue.summary", "-p", "start=2026-04-01", "-p", "end=2026-04-30",
               "-p", "currency=USD'; DROP TABLE users; --", "-f", "json")
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)
    assert row["purchases"] == 0 and row["currency"] == "USD'; DROP TABLE USERS; --"
    assert _users_count(cli_db) == before == 1


def test_daily_series_read_the_rollups_by_default_and_raw_with_the_flag(cli_db):
    """Closed days come from this backend's rollups (the output is the raw query's, to the character); --raw
    reads only the raw tables (shown by a rollup row made wrong on purpose)."""
    from ops.data import rollups

    tz = "Europe/Istanbul"
    now = dt.datetime(2026, 4, 10, tzinfo=UTC)   # every day asked for is closed: the CLI runs at this moment
    args = ("revenue.daily", "-p", "start=2026-04-01", "-p", "end=2026-04-06", "-p", f"tz={tz}")

    def at_now(*argv: str) -> subprocess.CompletedProcess:
        return run(cli_db, *argv, **clock_env_at(now))

    before = {fmt: at_now(*args, "--format", fmt).stdout for fmt in ("table", "csv", "json")}
    rollups.refresh(cli_db.analytics, cli_db.writer, tz, now=now)
    try:
        for fmt, text in before.items():
            proc = at_now(*args, "--format", fmt)
            assert proc.returncode == 0, proc.stderr
            assert proc.stdout == text, fmt
        with cli_db.writer.begin() as c:
            c.execute(sa.text("UPDATE opsbench.rollup_revenue_daily SET gross = gross + 1000 "
                              "WHERE tz = :tz AND day = '2026-04-03'"), {"tz": tz})
        rolled = json.loads(at_now(*args, "--format", "json").stdout)
        raw = json.loads(at_now(*args, "--format", "json", "--raw").stdout)
        assert [r["gross"] for r in rolled] == [0, 0, 1000 + 2 * 9.99, 2 * 9.99, 9.99, 0]
        assert [r["gross"] for r in raw] == [0, 0, 2 * 9.99, 2 * 9.99, 9.99, 0]
        assert json.loads(before["json"]) == raw
    finally:
        rollups.forget(cli_db.writer, tz)

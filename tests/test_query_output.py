"""`opsbench query` output on the demo data: JSON types follow the PostgreSQL column types, tables read well."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from support.clock import clock_env
import sqlalchemy as sa

import queries
from ops.core.settings import reset_settings_cache

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

# PostgreSQL type OIDs -> the JSON types a value of that column may take (null aside)
INTS = {20, 21, 23, 26}
FRACTIONAL = {700, 701, 1700}
BOOL = 16
TEXTUAL = {25, 1043, 1042, 19, 2950, 18}  # text, varchar, bpchar, name, uuid, char
DATES = {1082: dt.date.fromisoformat, 1114: dt.datetime.fromisoformat, 1184: dt.datetime.fromisoformat}


@pytest.fixture()
def cli(demo_db, monkeypatch, capsys):
    from ops.cli import main

    monkeypatch.setenv("DATABASE_URL", demo_db.url)
    monkeypatch.setenv("OPSBENCH_STATE_URL", demo_db.url)
    monkeypatch.setenv("REPORT_TZ", "UTC")
    reset_settings_cache()

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["query", *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _params(q, demo_db) -> list[str]:
    """Sensible values for every required parameter, from the demo's own rows."""
    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    with demo_db.analytics.connect() as c:
        user = c.execute(sa.text("SELECT user_id FROM quota_log LIMIT 1")).scalar_one()
        action = c.execute(sa.text("SELECT action FROM rate_limit_log LIMIT 1")).scalar()
    given = {"start": (anchor - dt.timedelta(days=14)).date().isoformat(), "end": anchor.date().isoformat(),
             "since": (anchor - dt.timedelta(days=2)).isoformat(), "until": anchor.isoformat(),
             "now": anchor.isoformat(), "user_id": str(user), "action": action or "generate"}
    out = []
    for p in q.params:
        if p.required or p.name == "now":
            assert p.name in given, f"{q.qualified_name}: no test value for {p.name}"
            out += ["-p", f"{p.name}={given[p.name]}"]
    return out


def _column_types(q, demo_db, args: list[str]) -> dict[str, int]:
    values = dict(a.split("=", 1) for a in args[1::2])
    with demo_db.analytics.connect() as c:
        result = c.execute(q.statement, q.bind(**values))
        return {d.name: d.type_code for d in result.cursor.description}


def test_every_named_query_writes_json_typed_like_its_columns(cli, demo_db):
    checked = nulls = whole_in_numeric = 0
    for q in queries.all_queries(internal=True):  # opsbench's own subjects run by name too
        args = _params(q, demo_db)
        code, out, err = cli(q.qualified_name, *args, "-f", "json")
        assert code == 0, (q.qualified_name, err)
        assert "NaN" not in out and "NaT" not in out and "Infinity" not in out, q.qualified_name
        rows = json.loads(out)
        types = _column_types(q, demo_db, args)
        for row in rows:
            assert list(row) == list(types), q.qualified_name
            for col, v in row.items():
                oid = types[col]
                where = f"{q.qualified_name}.{col}={v!r} (oid {oid})"
                checked += 1
                if v is None:
                    nulls += 1
                elif oid in INTS:
                    assert type(v) is int, where  # an int column with a NULL stays int, never 300.0
                elif oid in FRACTIONAL:
                    assert type(v) in (int, float), where
                    whole_in_numeric += type(v) is int
                elif oid == BOOL:
                    assert type(v) is bool, where
                elif oid in TEXTUAL:
                    assert type(v) is str, where
                elif oid in DATES:
                    assert type(v) is str, where
                    DATES[oid](v)
                elif oid == 1186:  # interval -> seconds
                    assert type(v) in (int, float), where
    assert checked > 1000 and nulls > 0  # the demo data does exercise missing values


def test_integer_column_with_null_stays_whole(cli, demo_db):
    # probes.replication: lag is NULL on a primary; pick a query whose int column has NULLs in the demo
    code, out, _ = cli("errors.daily", "-p", "start=2020-01-01", "-p", "end=2020-01-02", "-f", "json")
    assert code == 0
    rows = json.loads(out)
    assert [r["jobs"] for r in rows] == [0, 0] and all(r["error_rate"] is None for r in rows)
    assert all(type(r["jobs"]) is int for r in rows)


def test_table_rounds_aligns_keeps_ids_whole_and_stops_at_the_limit(cli, demo_db):
    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    start, end = (anchor - dt.timedelta(days=6)).date().isoformat(), anchor.date().isoformat()
    with demo_db.analytics.connect() as c:
        total = c.execute(sa.text("SELECT count(*) FROM video_jobs WHERE created_at >= :s AND created_at < :e"),
                          {"s": start, "e": (anchor.date() + dt.timedelta(days=1)).isoformat()}).scalar_one()
        first_id = c.execute(sa.text("SELECT id FROM video_jobs WHERE created_at >= :s ORDER BY created_at, id "
                                     "LIMIT 1"), {"s": start}).scalar_one()
    assert total > 50
    code, out, err = cli("export.jobs", "-p", f"start={start}", "-p", f"end={end}")
    assert code == 0, err
    lines = out.rstrip("\n").splitlines()
    assert len(lines) == 1 + 50  # header + the default limit
    assert str(first_id) in lines[1] and "…" not in out  # ids whole
    assert f"{total - 50} not shown" in err and f"({total} rows" in err

    code, out, _ = cli("export.jobs", "-p", f"start={start}", "-p", f"end={end}", "--limit", "3")
    assert len(out.rstrip("\n").splitlines()) == 4
    code, out, _ = cli("export.jobs", "-p", f"start={start}", "-p", f"end={end}", "-f", "json")
    assert len(json.loads(out)) == total  # json: unlimited by default

    code, out, _ = cli("errors.daily", "-p", f"start={start}", "-p", f"end={end}")
    header, *rows = out.rstrip("\n").splitlines()
    assert header.split()[0] == "day"
    ends = {len(r) for r in rows}
    assert len(ends) == 1  # right-aligned: every row ends in the same column
    for r in rows:
        cells = r.split()
        if cells[1] == "0":  # no finished job that day (the anchor's own day, just after midnight): no rate
            assert len(cells) == 4, r  # NULL ratios print as blanks, not 0 or NaN
            continue
        assert len(cells[4].split(".")[1]) == 4, r  # a ratio: four decimals, not 0.01579952380952381


def test_on_a_narrow_terminal_ids_stay_whole_and_the_table_fits(demo_db):
    """stdout a TTY 80 columns wide: ids uncut, no line wider than the terminal, the columns left out named.

    (The pager is only for results longer than the screen: 3 rows fit.)"""
    import os
    import pty
    import re
    import subprocess
    import sys

    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    day = (anchor - dt.timedelta(days=3)).date().isoformat()
    with demo_db.analytics.connect() as c:
        ids = [str(r) for r in c.execute(sa.text(
            "SELECT id FROM video_jobs WHERE created_at >= CAST(:d AS date) AND created_at < CAST(:d AS date) + 1 "
            "ORDER BY created_at, id LIMIT 3"), {"d": day}).scalars()]
    main_fd, sub_fd = pty.openpty()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
           "DATABASE_URL": demo_db.url, "OPSBENCH_STATE_URL": demo_db.url, "REPORT_TZ": "UTC",
           "COLUMNS": "80", "LINES": "40", "PAGER": "cat > pager-was-used.txt; cat pager-was-used.txt",
           "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **clock_env()}
    proc = subprocess.Popen([sys.executable, "-m", "ops", "query", "export.jobs", "-p", f"start={day}",
                             "-p", f"end={day}", "--limit", "3"], stdin=sub_fd, stdout=sub_fd, stderr=subprocess.PIPE, env=env)
    os.close(sub_fd)
    chunks = []
    while True:
        try:
            data = os.read(main_fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    os.close(main_fd)
    out = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", b"".join(chunks).decode())
    for i in ids:
        assert i in out, out  # whole, not 60433eee-1939…
    assert "…" not in out.splitlines()[1]
    assert all(len(line.rstrip()) <= 80 for line in out.replace("\r", "").splitlines()), out
    assert "left out to fit 80 columns" in out.replace("\r", "").replace("\n", " "), out
    assert not os.path.exists("pager-was-used.txt")  # the cwd is the test's tmp_path (conftest)

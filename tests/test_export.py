"""Streaming CSV export: `opsbench query NAME --format csv` through a server-side cursor.

Two things are proven, neither by timing or memory: the CSV equals the
query's DataFrame, and the rows really come from a server-side cursor
(the export's session is seen FETCHing from a declared cursor while the CLI is
paused on a full pipe, and the Python API hands rows over in several chunks).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import subprocess
import sys
import time

import pandas as pd
import pytest
from support.clock import clock_env
import sqlalchemy as sa
from support.recompute import local_day, read_table

import queries


@pytest.fixture(scope="module")
def window(demo_db) -> dict[str, str]:
    anchor = dt.datetime.fromisoformat(demo_db.manifest["anchor"])
    return {"start": (anchor - dt.timedelta(days=60)).date().isoformat(), "end": anchor.date().isoformat(),
            "tz": "Europe/Istanbul"}


def _cli(db, *args: str) -> list[str]:
    environ = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
               "DATABASE_URL": db.url, "OPSBENCH_STATE_URL": db.url, "PYTHONWARNINGS": "ignore", **clock_env()}
    if os.environ.get("PYTHONPATH"):   # a worktree run with PYTHONPATH=$PWD: the CLI imports the code under test
        environ["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return [sys.executable, "-m", "ops", "query", *args], environ


def _params(window: dict[str, str]) -> list[str]:
    return [x for k, v in window.items() for x in ("-p", f"{k}={v}")]


def _as_text(v) -> str:
    if v is None or v is pd.NaT or (isinstance(v, float) and v != v):  # NULL is an empty CSV field
        return ""
    return str(v)


# each export: the backend table it copies and the manifest's count of that table's rows
EXPORTS = {"export.ledger": ("quota_log", "ledger_rows"), "export.jobs": ("video_jobs", "video_jobs")}


def _independent(db, name: str, window: dict[str, str]) -> pd.DataFrame:
    """The export's rows read without its SQL: the whole table (no SQL text), cut and ordered in pandas."""
    table, _ = EXPORTS[name]
    rows = read_table(db.writer, table)
    day = local_day(rows["created_at"], window["tz"])
    start, end = dt.date.fromisoformat(window["start"]), dt.date.fromisoformat(window["end"])
    return rows[(day >= start) & (day <= end)].sort_values(["created_at", "id"], kind="stable")


@pytest.mark.parametrize("name", list(EXPORTS))
def test_csv_export_equals_an_independent_read_of_the_table(demo_db, window, name):
    cmd, env = _cli(demo_db, name, *_params(window), "--format", "csv")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = list(csv.reader(io.StringIO(proc.stdout)))
    want = _independent(demo_db, name, window)
    assert len(want) > 20_000  # several chunks of the CLI's 10 000 rows
    columns = got[0]
    assert set(columns) <= set(want.columns) and "id" in columns and "created_at" in columns
    assert len(got) - 1 == len(want)
    expected = [[_as_text(v) for v in row] for row in want[columns].astype(object).itertuples(index=False)]
    assert got[1:] == expected


@pytest.mark.parametrize("name", list(EXPORTS))
def test_an_export_of_the_whole_demo_window_has_every_row_the_manifest_counts(demo_db, name):
    _, key = EXPORTS[name]
    start = dt.datetime.fromisoformat(demo_db.manifest["window"]["start"]).astimezone(dt.UTC).date()
    end = dt.datetime.fromisoformat(demo_db.manifest["anchor"]).astimezone(dt.UTC).date()
    rows = queries.get(name)(demo_db.analytics, start=start.isoformat(), end=end.isoformat(), tz="UTC")
    assert len(rows) == demo_db.manifest[key] > 0
    assert rows["id"].is_unique


def test_the_cli_reads_through_a_server_side_cursor(demo_db, window):
    cmd, env = _cli(demo_db, "export.ledger", *_params(window), "--format", "csv")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        header = proc.stdout.readline()
        assert header.startswith(b"id,created_at")
        # we stop reading: the CLI blocks on the full pipe in the middle of the export,
        # its transaction still open; a streaming export is then parked on a FETCH
        activity = sa.table("pg_stat_activity", sa.column("query"), sa.column("state"),
                            sa.column("application_name"), sa.column("datname"), schema="pg_catalog")
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with demo_db.writer.connect() as c:
                seen = c.execute(sa.select(activity.c.query, activity.c.state).where(
                    activity.c.application_name == "opsbench", activity.c.datname == sa.func.current_database(),
                )).all()
            if any(q.lstrip().upper().startswith("FETCH") and s == "idle in transaction" for q, s in seen):
                break
            time.sleep(0.2)
        assert any(q.lstrip().upper().startswith("FETCH") for q, _ in seen), seen
        rest = proc.stdout.read()
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    rows = header.count(b"\n") + rest.count(b"\n") - 1
    assert rows == len(queries.export.ledger(demo_db.analytics, **window))


def test_stream_yields_bounded_chunks_from_a_named_cursor(demo_db, window):
    cursors = sa.table("pg_cursors", sa.column("name"), schema="pg_catalog")
    sizes, open_cursors = [], []
    with demo_db.analytics.connect() as conn:
        for _cols, rows in queries.export.jobs.stream(conn, chunk_rows=5_000, **window):
            sizes.append(len(rows))
            # pg_cursors lists the session's own cursors: the stream's cursor is open on this connection
            open_cursors.append(conn.execute(sa.select(cursors.c.name)).scalars().all())
    assert len(sizes) >= 3 and max(sizes) <= 5_000
    assert sum(sizes) == len(queries.export.jobs(demo_db.analytics, **window))
    assert all(names for names in open_cursors[:-1])

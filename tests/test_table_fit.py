"""Every table command in a real pseudo-terminal at 80, 100 and 160 columns: no line wider than the
terminal, and every name a founder types (job ids, query names, check names, alert keys, parameter
names, the days of a result) printed whole.

The names expected come from the repository (queries/checks/*.sql, jobs/jobs.toml, the query files)
and from the findings recorded here, never from the command under test.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import tomllib
from pathlib import Path

import pytest
from rich.cells import cell_len
from support.clock import clock_env

import queries
from ops.alerting import manager as alerts
from ops.contract import Finding, JobResult
from ops.core.clock import utc_now

REPO = Path(__file__).resolve().parents[1]
WIDTHS = (80, 100, 160)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
LONG = ("the backend's /health endpoint answered 503 three times in a row and the external API check "
        "reported itself unhealthy, see the evidence for the first offending rows")


def in_pty(args: list[str], width: int, env: dict[str, str]) -> tuple[int, str]:
    """Run `python -m ops ARGS` with stdout and stderr on a pty `width` columns wide; (exit code, text)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 500, width, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "ops", *args], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=slave, env={**env, "COLUMNS": str(width), "LINES": "500"}, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            proc.kill()
            raise AssertionError(f"opsbench {' '.join(args)} printed nothing for 120 s")
        try:
            data = os.read(master, 65536)
        except OSError:        # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    code = proc.wait(timeout=120)
    return code, ANSI.sub("", b"".join(chunks).decode("utf-8", "replace")).replace("\r", "")


@pytest.fixture(scope="module")
def env(demo_db):
    from ops.data.state import migrate

    now = utc_now()
    settings = demo_db.settings
    migrate(demo_db.writer)
    alerts.record_result(demo_db.writer, "http_probes", JobResult(findings=[
        Finding(rule="health_check_failing", severity="critical", summary=LONG,
                labels={"probe": "backend_with_a_rather_long_probe_name"}, command="opsbench run http_probes"),
    ]), now, settings)
    alerts.record_result(demo_db.writer, "reconcile", JobResult(findings=[
        Finding(rule="reconcile_purchase_credited_to_other_user", severity="warning", summary=LONG,
                labels={"check": "purchase_credited_to_other_user"}),
    ]), now, settings)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
            "TERM": "xterm-256color", "PAGER": "cat", "PYTHONWARNINGS": "ignore",
            "DATABASE_URL": demo_db.url, "OPSBENCH_STATE_URL": demo_db.url, "OPSBENCH_HOME": str(demo_db.settings.home),
            "PYTHONPATH": str(REPO), **clock_env()}


def _names(demo_db) -> dict[tuple[str, ...], list[str]]:
    jobs = list(tomllib.loads((REPO / "jobs" / "jobs.toml").read_text())["jobs"])
    checks = sorted(p.stem for p in (REPO / "queries" / "checks").glob("*.sql"))
    query_names = [q.qualified_name for q in queries.all_queries()]
    revenue = queries.get("revenue.daily")
    anchor = dt.date.fromisoformat(str(demo_db.manifest["anchor"])[:10])
    start, end = anchor - dt.timedelta(days=7), anchor - dt.timedelta(days=1)
    days = [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    return {
        ("jobs",): jobs,
        ("jobs", "--explain"): jobs,
        ("query", "--list"): query_names,
        ("query", "--list", "revenue.daily"): [p.name for p in revenue.params],
        ("checks", "list"): checks,
        ("query", "revenue.daily", "-p", f"start={start}", "-p", f"end={end}"): days,
        ("alerts",): ["health_check_failing{probe=backend_with_a_rather_long_probe_name}",
                      "reconcile_purchase_credited_to_other_user{check=purchase_credited_to_other_user}"],
    }


def test_names_and_jobs_file_agree():
    """The job ids this test expects are the jobs file's (a renamed file would make the test vacuous)."""
    jobs = tomllib.loads((REPO / "jobs" / "jobs.toml").read_text())["jobs"]
    assert len(jobs) >= 8 and "reconcile" in jobs


def _numbers_right_aligned(out: str, days: list[str], width: int) -> list[str]:
    """Under the header `gross`, every day's amount ends where the header ends."""
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("day"))
    end = header.index("gross") + len("gross")
    bad = [line for line in lines if line[:10] in days and not (line[end - 1].isdigit() and line[end:end + 1] in (" ", ""))]
    return [f"revenue.daily at {width}: gross not right-aligned: {bad[:2]}"] if bad else []


@pytest.mark.parametrize("width", WIDTHS)
def test_every_table_fits_and_names_are_whole(env, demo_db, width):
    problems = []
    for args, names in _names(demo_db).items():
        code, out = in_pty(list(args), width, env)
        assert code in (0, 1), (args, out)          # alerts exits 1: a critical alert is open
        assert "Traceback" not in out, (args, out)
        if os.environ.get("SHOW_TABLES"): print(f"== {args} @ {width}\n{out}")
        wide = [line for line in out.splitlines() if cell_len(line.rstrip()) > width]
        if wide:
            problems.append(f"{' '.join(args)} at {width}: {len(wide)} line(s) wider, e.g. {wide[0]!r}")
        words = set(re.split(r"[\s,]+", out))
        missing = [n for n in names if n not in words and f"{n} (disabled)" not in out]
        if missing:
            problems.append(f"{' '.join(args)} at {width}: not whole: {missing[:5]}\n{out}")
        if args[:2] == ("query", "revenue.daily"):
            problems += _numbers_right_aligned(out, names, width)
    assert not problems, "\n".join(problems)

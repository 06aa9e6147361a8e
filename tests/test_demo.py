"""`opsbench demo` (what `make demo` runs) as a user meets it: a fresh state directory, a subprocess,
its own embedded PostgreSQL, every job once, the messages it would send, and the files it writes."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import browser
from support.clock import clock_env

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

PYTHON = Path(sys.executable)
REPO = Path(__file__).resolve().parents[1]
TZ = "Europe/Istanbul"
# What must have happened before what when every job runs once (jobs' callables by module):
# probes see the world first, metric checks and reconciliation judge it, cleanup
# deletes only after they looked, reports summarise all of it, the outbox drains last.
ORDER = ["jobs.probes", "jobs.metrics", "jobs.reconcile", "jobs.cleanup", "jobs.reports", "jobs.builtin:drain_outbox"]


def _env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
            "OPSBENCH_HOME": str(home), "REPORT_TZ": TZ, "PYTHONWARNINGS": "ignore",
            "PYTHONPATH": str(REPO), **clock_env()}   # this checkout, not the copy the venv installed


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """Run the demo once in a fresh home; keep its server up for the checks, then stop it."""
    from ops.core.settings import load_settings

    home = tmp_path_factory.mktemp("demo") / "opsbench-home"
    env = _env(home)
    # `make demo` itself, as the README says (its venv step is a no-op once `make test` built .venv);
    # the console script directly only where make is missing (pytest run by hand)
    make = shutil.which("make")
    cmd = [make, "-s", "-C", str(REPO), "demo"] if make else [str(PYTHON), "-m", "ops", "demo"]
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=420)
        yield proc, home, load_settings(OPSBENCH_HOME=str(home), REPORT_TZ=TZ)
    finally:
        subprocess.run([str(PYTHON), "-m", "ops", "db", "down"], env=env, capture_output=True, timeout=120)


def test_demo_shows_the_whole_system(demo_run):
    from ops.reports import charts
    from ops.workbench.notebooks import notebook_paths

    proc, home, _ = demo_run
    out = proc.stdout
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((home / "demo-manifest.json").read_text())
    assert "seeded in" in out                                    # a fresh machine: seeded on the spot
    assert "backend /health stand-in: http://127.0.0.1:" in out
    # the alert messages, through the console channel: the health stand-in's failing check and the ledger faults
    assert "FIRING · critical · health_check_failing{probe=backend}" in out
    assert "checks.externalApi is False" in out
    for check, count in manifest["checks"].items():
        if count and check != "negative_balances":
            assert f"reconciliation {check}: {count} row(s)" in out, check
    # the nightly check of negative balances waits behind the live probe's alert: one message for one fault
    assert "FIRING · critical · negative_balance\n" in out
    assert "reconciliation negative_balances:" not in out
    # the digest, with the volumes the cleanup job just removed (the generator's retention counts)
    digest = out[out.index("📊 Daily digest · "):]
    assert "Data: " in digest and TZ in digest and "Generated " in digest
    deleted = int(re.search(r"rate_limit_log ([\d,]+)", digest).group(1).replace(",", ""))
    expected = manifest["retention"]["rate_limit_older_than_7_days"]
    # counted at the anchor; the job runs a minute or so later, when a few more rows have aged past 7 days
    assert expected <= deleted <= expected * 1.01 + 5, (deleted, expected)
    assert re.search(r"Alerts: \d+ open \(", digest) and "health_check_failing{probe=backend}" in digest
    if charts.find_browser() is not None:
        # the three charts as one album under the digest
        assert re.search(r"\[media group: 3 photos, \d+ bytes: daily-revenue-\S+, daily-dau-\S+, "
                         r"daily-error_rate-", out)
    else:
        assert "[document daily-charts-" in out
    assert "📈 Weekly report · " in out
    assert "make lab" in out
    # one count of the open alerts: the demo's line after the alert messages is the digest's
    said = re.search(r"^alerts: (\d+ open \([^)]*\))", out, re.M)
    assert said, out[-3000:]
    assert f"Alerts: {said.group(1)}" in digest
    # the next steps: the command it prints works where `make demo` ran (the repository), as printed
    daemon = re.search(r"^  (\S+(?: -m ops)?) daemon ", out, re.M)
    assert daemon, out[-2000:]
    cmd = daemon.group(1)
    assert f"{cmd} db down" in out                      # how to stop the embedded server
    # in the shell that ran it: its PATH, in the repository (`make -C REPO demo` runs there)
    ran = subprocess.run(f"{cmd} --version", shell=True, cwd=REPO if shutil.which("make") else None,
                         env=_env(home), capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and ran.stdout.startswith("opsbench "), (cmd, ran.stderr)
    # the files
    reports = list((home / "out").glob("report-daily-*.html"))
    assert len(reports) == 1 and "Plotly.newPlot" in reports[0].read_text(encoding="utf-8")
    for nb in notebook_paths():
        page = home / "out" / "notebooks" / f"{nb.stem}.html"
        assert page.is_file() and page.stat().st_size > 10_000, nb.stem
    # one index of every notebook (the render threads no longer overwrite each other's), its path printed
    index = home / "out" / "notebooks" / "index.html"
    assert f"{index}  (index of all {len(notebook_paths())} notebooks" in out
    linked = set(re.findall(r'href="([^"]+)\.html"', index.read_text(encoding="utf-8")))
    assert linked == {nb.stem for nb in notebook_paths()}, linked


def test_demo_runs_are_recorded_and_findings_reach_the_alert_manager(demo_run):
    import queries
    from ops.alerting import manager as alerts
    from ops.daemon.jobspec import load_jobs
    from ops.data import db, embedded

    _, _, settings = demo_run
    embedded.start(settings)                   # attach to the server the demo left running
    engine = db.make_engine("state", settings)
    try:
        with engine.connect() as conn:
            last = {r.job: r for r in queries.load("state/daemon").last_runs.execute(conn)}
        declared = {s.id for s in load_jobs(settings) if s.enabled}
        assert declared <= set(last), declared - set(last)
        assert {j: r.status for j, r in last.items() if r.status not in ("ok", "skipped")} == {}
        assert all(r.trigger == "manual" for r in last.values())
        # dependency order, from the recorded start times
        callables = {s.id: s.callable for s in load_jobs(settings)}

        def rank(job: str) -> int | None:
            c = callables.get(job, "")
            return next((i for i, p in enumerate(ORDER) if c == p or c.split(":")[0] == p), None)

        started = sorted((r.started_at, rank(j), j) for j, r in last.items() if rank(j) is not None)
        assert {rk for _, rk, _ in started} == set(range(len(ORDER))), started
        ranks = [rk for _, rk, _ in started]
        assert ranks == sorted(ranks), [(j, rk) for _, rk, j in started]
        firing = {a.key for a in alerts.firing(engine)}
        assert "health_check_failing{probe=backend}" in firing
        assert any(k.startswith("reconcile_") for k in firing)
    finally:
        engine.dispose()


def test_demo_refuses_a_real_database(monkeypatch, capsys):
    from ops.cli import main

    monkeypatch.setenv("DATABASE_URL", "postgresql://ops:secret@db.example.com:5432/prod")
    assert main(["demo"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "only for the embedded demo database" in err[0] and "secret" not in err[0]


def _figure(text: str, label: str) -> float:
    """The first number on the table row `label` of a printed digest (`gross     1,552.18 ...`)."""
    m = re.search(rf"^{re.escape(label)}\s+([\d,]+(?:\.\d+)?)", text, re.M)
    assert m, (label, text[:1500])
    return float(m.group(1).replace(",", ""))


def test_after_the_demo_a_founder_points_database_url_at_another_database(demo_run):
    """As the README says: after `make demo`, DATABASE_URL at the founder's database (here: another database
    with other data, seed 2, on the same server), OPSBENCH_STATE_URL unset, so the state store is still the
    demo's. `opsbench status` shows none of the demo's alerts, the daily and weekly digests print the new
    database's raw numbers before and after `opsbench run rollups`, and one "backend changed" message waits."""
    import psycopg

    import queries
    from ops.data import db, embedded
    from ops.data.seed import seed_database
    from queries.loader import script

    _, home, settings = demo_run
    demo_url = embedded.start(settings)
    other = embedded.server_url(settings, "founder_app")
    with psycopg.connect(embedded.server_url(settings, "postgres"), autocommit=True) as c:
        c.execute("DROP DATABASE IF EXISTS founder_app WITH (FORCE)")
        c.execute("CREATE DATABASE founder_app")
    with psycopg.connect(other, autocommit=True) as c:
        c.execute(script("schema.sql"))
    manifest = json.loads((home / "demo-manifest.json").read_text())
    seed_database(other, scale="small", seed=2, anchor=dt.datetime.fromisoformat(manifest["anchor"]))
    env = {**_env(home), "DATABASE_URL": other}

    def opsbench(*args: str) -> str:
        done = subprocess.run([str(PYTHON), "-m", "ops", *args], env=env, capture_output=True, text=True,
                              timeout=180)
        assert done.returncode in (0, 1), (args, done.stdout[-2000:], done.stderr[-2000:])
        return done.stdout

    status = opsbench("status")
    assert "alerts: nothing open" in status, status

    from ops.core.settings import load_settings
    from ops.reports import figures as report

    founder = load_settings(DATABASE_URL=other, OPSBENCH_HOME=str(home), REPORT_TZ=TZ)
    analytics = db.make_engine("analytics", founder)
    demo_engine = db.make_engine("analytics", load_settings(DATABASE_URL=demo_url, OPSBENCH_HOME=str(home),
                                                            REPORT_TZ=TZ))
    try:
        day = report.default_window("daily", founder).start
        week = report.default_window("weekly", founder)
        w = {"start": day, "end": day, "tz": TZ}
        ww = {"start": week.start, "end": week.end, "tz": TZ}
        want = {"gross": float(queries.revenue.daily.raw(analytics, **w)["gross"].sum()),
                "DAU": float(queries.activity.daily.raw(analytics, **w)["dau"].sum()),
                "jobs": float(queries.errors.daily.raw(analytics, **w)["jobs"].sum()),
                "failed": float(queries.errors.daily.raw(analytics, **w)["failed"].sum())}
        want_week = float(queries.revenue.daily.raw(analytics, **ww)["gross"].sum())
        demo_gross = float(queries.revenue.daily.raw(demo_engine, **w)["gross"].sum())
        assert demo_gross != want["gross"]                       # the demo's number would be visibly wrong
        for run in ("first", "after the rollups job"):
            daily = opsbench("report", "daily", "--date", day.isoformat())
            for label, value in want.items():
                assert _figure(daily, label) == pytest.approx(value, abs=0.005), (run, label)
            weekly = opsbench("report", "weekly", "--date", week.start.isoformat())
            assert _figure(weekly, "gross") == pytest.approx(want_week, abs=0.005), run
            assert "Alerts: nothing open" in daily
            if run == "first":
                assert "rollups are rebuilding" in daily
                opsbench("run", "rollups")
            else:
                assert "rollups are rebuilding" not in daily
    finally:
        analytics.dispose()
        demo_engine.dispose()
    state = db.make_engine("state", settings)
    try:
        with state.connect() as c:
            bodies = [r[0] for r in c.exec_driver_sql("SELECT body FROM opsbench.outbox")
                      if "backend changed" in r[0]]
    finally:
        state.dispose()
    assert len(bodies) == 1 and "founder_app@" in bodies[0], bodies


def test_the_next_command_is_spelled_for_the_founders_path(monkeypatch, tmp_path):
    """`make demo` leaves the PATH alone: without the venv on it, the demo names the venv's script
    (relative to where it ran when under it); with it, plain `opsbench`. Either way the words run."""
    from ops.workbench.demo import command_name, next_steps

    venv_bin = Path(sys.executable).parent
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.chdir(venv_bin.parent.parent)
    cmd = command_name()
    assert cmd != "opsbench" and Path(cmd).name == "opsbench"
    ran = subprocess.run([cmd, "--version"], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", **clock_env()})
    assert ran.returncode == 0 and ran.stdout.startswith("opsbench "), ran.stderr
    monkeypatch.setenv("PATH", f"{venv_bin}:/usr/bin:/bin")
    assert command_name() == "opsbench"
    lines = next_steps(cmd, telegram=False, embedded=True)
    assert lines[0].split()[:2] == [cmd, "daemon"]
    assert any(line.split()[:3] == [cmd, "db", "down"] for line in lines)
    assert not any("db down" in line for line in next_steps("opsbench", telegram=True, embedded=False))


# -- the pages the demo rendered, as a founder opens them --------------------------------------------------

needs_chromium = pytest.mark.skipif(browser.chromium() is None,
                                    reason="no Chromium on this machine (CI installs Debian's chromium)")


@pytest.fixture(scope="module")
def inspected(demo_run):
    """Every notebook page and the index the demo rendered (after every job ran once), opened in headless
    Chromium at 390 px and 1280 px."""
    from ops.workbench.notebooks import notebook_paths

    proc, home, _ = demo_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    pages = [home / "out" / "notebooks" / f"{nb.stem}.html" for nb in notebook_paths()]
    pages.append(home / "out" / "notebooks" / "index.html")
    return pages, browser.inspect_pages(pages), [str(home), str(REPO)]


def _page(inspected, name: str, width: int):
    return next(p for p in inspected[1] if p.path.stem == name and p.width == width)


@needs_chromium
def test_every_page_is_finished_at_390_and_1280_px(demo_run, inspected):
    pages, pages_seen, forbidden = inspected
    assert {(p.path.name, p.width) for p in pages_seen} == {(p.name, w) for p in pages
                                                             for w in (browser.PHONE, browser.LAPTOP)}
    failures = {f"{p.path.name} @ {p.width} px": browser.page_problems(p, forbidden) for p in pages_seen}
    assert {k: v for k, v in failures.items() if v} == {}
    # the render itself warned about nothing (a kernel left to notice its parent exit said
    # "[IPKernelApp] WARNING | Parent appears to have exited")
    assert not re.search(r"traceback|IPKernelApp\] WARNING", demo_run[0].stderr, re.IGNORECASE), demo_run[0].stderr


@needs_chromium
def test_wide_tables_say_they_scroll_on_a_phone(inspected):
    # the reconciliation tables (uuids side by side) do not fit 390 px: the page says to swipe them
    phone = _page(inspected, "reconciliation", browser.PHONE)
    assert phone.scroll_hints > 0 and "swipe sideways for more columns" in phone.text
    assert _page(inspected, "index", browser.LAPTOP).scroll_hints == 0


@needs_chromium
def test_operations_page_tells_firing_from_resolved(inspected):
    text = _page(inspected, "operations", browser.LAPTOP).text
    assert "lasted - at the median" not in text
    m = re.search(r"(\d+) alert episodes\*?\*?, (\d+) still firing; (none has resolved yet|the \d+ resolved lasted)",
                  text)
    assert m, text[:2000]
    assert int(m.group(2)) > 0 and "still firing" in text.split("Alert history")[-1]


@needs_chromium
def test_the_drill_down_says_why_its_user(inspected):
    text = _page(inspected, "reconciliation", browser.LAPTOP).text
    assert "Why this user:" in text and "Set user_id to look at another" in text

"""`opsbench demo` (what `make demo` runs) as a user meets it: a fresh state directory, a subprocess,
its own embedded PostgreSQL, every job once, the messages it would send, and the files it writes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PYTHON = Path(sys.executable)
REPO = Path(__file__).resolve().parents[1]
TZ = "Europe/Istanbul"
# What must have happened before what when every job runs once (jobs' callables by module):
# probes see the world first, metric checks and reconciliation judge it, cleanup
# deletes only after they looked, reports summarise all of it, the outbox drains last.
ORDER = ["jobs.probes", "jobs.metrics", "jobs.reconcile", "jobs.cleanup", "jobs.reports", "jobs.builtin:drain_outbox"]


def _env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
            "OPSBENCH_HOME": str(home), "REPORT_TZ": TZ, "PYTHONWARNINGS": "ignore"}


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
    assert "Alerts firing: " in digest and "health_check_failing{probe=backend}" in digest
    if charts.find_browser() is not None:
        # the three charts as one album under the digest
        assert re.search(r"\[media group: 3 photos, \d+ bytes: daily-revenue-\S+, daily-dau-\S+, "
                         r"daily-error_rate-", out)
    else:
        assert "[document daily-charts-" in out
    assert "📈 Weekly report · " in out
    assert "opsbench daemon" in out and "make lab" in out
    # the files
    reports = list((home / "out").glob("report-daily-*.html"))
    assert len(reports) == 1 and "Plotly.newPlot" in reports[0].read_text(encoding="utf-8")
    for nb in notebook_paths():
        page = home / "out" / "notebooks" / f"{nb.stem}.html"
        assert page.is_file() and page.stat().st_size > 10_000, nb.stem


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

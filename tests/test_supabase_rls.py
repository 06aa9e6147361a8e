"""A Supabase-shaped backend on Debian's PostgreSQL 15 (support/pg15.py, support/supabase_shape.py):
row level security on every table with policies only TO authenticated, `postgres` a CREATEROLE,
BYPASSRLS role that is no superuser, deploy/roles.sql run as `postgres` exactly as the README says.

Every figure opsbench gives as opsbench_ro / opsbench_maint is exactly the superuser's (the same
command over a superuser connection), or the command exits non-zero with one line naming the fix;
the daily digest never says "All clear" while rows are hidden (the refusals: test_supabase_rls_refusals.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from support import supabase_shape as sb
from support.clock import clock_env
from support.digest_text import stable_lines
from support.daemon_support import REPO

PASSWORDS = {"opsbench_ro": "ro-" + "a1" * 12, "opsbench_maint": "mt-" + "b2" * 12, "opsbench_state": "st-" + "c3" * 12}
DAY = "2026-03-09"                      # the anchor's yesterday (support/supabase_shape.ANCHOR)
WINDOW = ("-p", "start=2026-03-01", "-p", f"end={DAY}")
NOTEBOOK = ("from ops import notebook as nb; import sys; "
            "df = nb.revenue_series('2026-03-01', '2026-03-09', tz='UTC'); "
            "sys.stdout.write(df.to_json(orient='records', date_format='iso'))")


def _roles_sql(db: sb.SupabaseDb, *extra: str) -> subprocess.CompletedProcess:
    """The README's command: psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -v ro_password=... -f deploy/roles.sql"""
    return db.server.psql(db.postgres_url, "-v", "ON_ERROR_STOP=1", *extra,
                          "-v", f"ro_password={PASSWORDS['opsbench_ro']}",
                          "-v", f"maint_password={PASSWORDS['opsbench_maint']}",
                          "-v", f"state_password={PASSWORDS['opsbench_state']}",
                          "-f", "deploy/roles.sql", check=False, cwd=REPO)


class Env:
    """The three DSNs as the README writes them into .env, and the same with the superuser for reference."""

    def __init__(self, db: sb.SupabaseDb, home: Path):
        self.db = db
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("OPSBENCH_", "TELEGRAM_", "SENTRY_", "DATABASE_URL", "MAINTENANCE_DATABASE_URL"))}
        base.update(PYTHONPATH=str(REPO), OPSBENCH_HOME=str(home), REPORT_TZ="UTC", **clock_env())
        self.roles = {**base, "DATABASE_URL": db.url("opsbench_ro", PASSWORDS["opsbench_ro"]),
                      "MAINTENANCE_DATABASE_URL": db.url("opsbench_maint", PASSWORDS["opsbench_maint"]),
                      "OPSBENCH_STATE_URL": db.url("opsbench_state", PASSWORDS["opsbench_state"])}
        self.superuser = {**base, "DATABASE_URL": db.admin_url, "MAINTENANCE_DATABASE_URL": db.admin_url,
                          "OPSBENCH_STATE_URL": db.url("opsbench_state", PASSWORDS["opsbench_state"])}

    def run(self, *args: str, superuser: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ops", *args], env=self.superuser if superuser else self.roles,
                              cwd=self.home, capture_output=True, text=True, timeout=300)

    def notebook(self, superuser: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", NOTEBOOK], env=self.superuser if superuser else self.roles,
                              cwd=self.home, capture_output=True, text=True, timeout=300)


def _one_line_refusal(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode != 0, proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert "Traceback" not in proc.stderr and "Error:" not in line.split("error:", 1)[-1][:40], line
    assert "http" not in line and "sqlalche.me" not in line, line
    for w in words:
        assert w in line, (w, line)
    return line


# -- the path that works: roles.sql as postgres, tables owned by postgres or by another superuser -----------

@pytest.fixture(scope="module", params=["postgres", "supabase_admin"])
def deployed(request, pg15, tmp_path_factory):
    db = sb.make(pg15, f"sb_{request.param}", owner=request.param)
    done = _roles_sql(db)
    try:
        yield db, done, Env(db, tmp_path_factory.mktemp(f"home_{request.param}"))
    finally:
        db.drop()


def test_roles_sql_takes_the_views_path_and_exits_0_without_warnings(deployed):
    db, done, _ = deployed
    assert done.returncode == 0, done.stderr
    assert "no privileges were granted" not in done.stderr
    assert "reads through views" in done.stdout
    with psycopg.connect(db.admin_url) as conn:
        owner = conn.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'opsbench_compat'"
                             ).fetchone()[0]
        assert owner == "postgres"   # views owned by a BYPASSRLS role: they read every row


def test_doctor_sees_every_row(deployed):
    _, _, env = deployed
    proc = env.run("doctor")
    lines = {ln.split()[1] + " " + ln.split()[2]: ln for ln in proc.stdout.splitlines() if len(ln.split()) > 2}
    vis = next(ln for ln in proc.stdout.splitlines() if " row visibility " in f" {ln} " and "cleanup" not in ln)
    assert vis.startswith("ok"), proc.stdout
    assert "hides nothing from opsbench_ro" in vis and "views owned by postgres" in vis and "BYPASSRLS" in vis
    cleanup = next(ln for ln in proc.stdout.splitlines() if "cleanup row visibility" in ln)
    assert cleanup.startswith("ok"), cleanup
    assert lines, proc.stdout
    for name in ("query privileges", "cleanup privileges"):
        line = next(ln for ln in proc.stdout.splitlines() if name in ln)
        assert line.startswith("ok"), line


@pytest.mark.parametrize("args", [
    ("query", "revenue.daily", *WINDOW, "--format", "json"),
    ("query", "activity.daily", *WINDOW, "--format", "json"),
])
def test_queries_give_exactly_the_superusers_figures(deployed, args):
    _, _, env = deployed
    mine, ref = env.run(*args), env.run(*args, superuser=True)
    assert mine.returncode == 0 and ref.returncode == 0, (mine.stderr, ref.stderr)
    rows = json.loads(mine.stdout)
    assert len(rows) >= 9 and rows == json.loads(ref.stdout)
    assert any(any(isinstance(v, (int, float)) and v > 0 for v in r.values()) for r in rows)  # not a page of zeros


def test_reconcile_finds_every_planted_fault(deployed):
    db, _, env = deployed
    proc = env.run("run", "reconcile", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    for check, count in db.manifest["checks"].items():
        assert f"  reconcile_{check} = {count}\n" in proc.stdout, (check, count, proc.stdout)
    assert "BROKEN" not in proc.stdout


def test_cleanup_dry_run_counts_what_the_superuser_counts(deployed):
    _, _, env = deployed
    mine, ref = env.run("run", "cleanup", "--dry-run"), env.run("run", "cleanup", "--dry-run", superuser=True)
    assert mine.returncode == 0 and ref.returncode == 0, (mine.stderr, ref.stderr)

    def metrics(out: str) -> list[str]:
        return [ln for ln in out.splitlines() if ln.startswith("  ") and " = " in ln]

    assert metrics(mine.stdout) and metrics(mine.stdout) == metrics(ref.stdout)
    assert "  rate_limit_log_eligible = 0" not in mine.stdout


def test_daily_report_is_the_superusers(deployed):
    _, _, env = deployed
    mine, ref = env.run("report", "daily", "--date", DAY), env.run("report", "daily", "--date", DAY, superuser=True)
    assert mine.returncode == 0 and ref.returncode == 0, (mine.stderr, ref.stderr)
    assert stable_lines(mine.stdout) == stable_lines(ref.stdout) and "USD" in mine.stdout


def test_notebook_series_are_the_superusers(deployed):
    _, _, env = deployed
    mine, ref = env.notebook(), env.notebook(superuser=True)
    assert mine.returncode == 0 and ref.returncode == 0, (mine.stderr[-2000:], ref.stderr[-2000:])
    assert json.loads(mine.stdout) == json.loads(ref.stdout) and len(json.loads(mine.stdout)) == 9

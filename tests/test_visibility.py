"""ops/data/visibility.py on the embedded server: the table lists follow the SQL, the verdict is read
once per engine, and row level security, policies, ownership and FORCE are judged as PostgreSQL
applies them (a role's own connection, the EXISTS probe against the planner's estimate)."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

import queries
from ops.data import runtime, visibility

READER = "vis_reader"


def _backend_tables() -> set[str]:
    root = Path(queries.__file__).resolve().parent
    return set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", (root / "schema.sql").read_text()))


def test_the_listed_tables_are_the_tables_the_queries_and_cleanup_read():
    root = Path(queries.__file__).resolve().parent
    backend = _backend_tables()
    text = "\n".join(p.read_text() for p in [*root.glob("*.sql"), *root.glob("internal/*.sql"), *root.glob("checks/*.sql")]
                     if p.name != "schema.sql")
    assert set(visibility.ANALYTICS_TABLES) == {t for t in backend if re.search(rf"\b{t}\b", text)}
    # cleanup deletes with queries/internal/maintenance/cleanup.sql and reports stuck jobs with metrics.stuck_jobs
    cleanup = (root / "internal" / "maintenance" / "cleanup.sql").read_text() + queries.load("metrics").stuck_jobs.sql
    assert set(visibility.MAINTENANCE_TABLES) == {t for t in backend if re.search(rf"\b{t}\b", cleanup)}


def test_the_verdict_costs_one_catalog_read_per_engine(demo_db, monkeypatch):
    calls = []
    real = visibility.read

    def counting(*args, **kwargs):
        calls.append(args[2] if len(args) > 2 else kwargs.get("tables"))
        return real(*args, **kwargs)

    monkeypatch.setattr(visibility, "read", counting)
    runtime.dispose_all()
    engine = runtime.for_settings(demo_db.settings).engine("analytics")
    for _ in range(3):
        queries.revenue.daily.raw(engine, start="2026-01-01", end="2026-01-02", tz="UTC")
    engine.dispose()  # every pooled connection gone: the next query opens a new one, the verdict is kept
    queries.revenue.daily.raw(engine, start="2026-01-01", end="2026-01-02", tz="UTC")
    assert calls == [visibility.ANALYTICS_TABLES]
    verdict = visibility.cached(engine)
    assert verdict is not None and verdict.refusal() is None
    assert {t.table for t in verdict.tables} == set(visibility.ANALYTICS_TABLES)
    purchases = next(t for t in verdict.tables if t.table == "purchases")
    assert purchases.sees_rows is True and not purchases.rls and purchases.can_select
    runtime.dispose_all()


@pytest.fixture()
def reader(demo_db):
    """A login role with SELECT on purchases only; dropped afterwards (roles are server-wide)."""
    with psycopg.connect(demo_db.url, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {READER} LOGIN")
        admin.execute(f"GRANT SELECT ON purchases TO {READER}")
        admin.execute("ANALYZE purchases")
    url = sa.make_url(demo_db.url).set(drivername="postgresql+psycopg", username=READER, password=None)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    yield demo_db, engine
    engine.dispose()
    with psycopg.connect(demo_db.url, autocommit=True) as admin:
        admin.execute("ALTER TABLE purchases NO FORCE ROW LEVEL SECURITY")
        admin.execute("ALTER TABLE purchases DISABLE ROW LEVEL SECURITY")
        admin.execute("DROP POLICY IF EXISTS opsbench_read ON purchases")
        admin.execute("DROP POLICY IF EXISTS narrow ON purchases")
        admin.execute(f"ALTER TABLE purchases OWNER TO {sa.make_url(demo_db.url).username}")
        admin.execute(f"DROP OWNED BY {READER}")
        admin.execute(f"DROP ROLE {READER}")


def _purchases(engine) -> visibility.TableView:
    with engine.connect() as conn:
        verdict = visibility.verdict(conn)
    assert verdict.role == READER
    return next(t for t in verdict.tables if t.table == "purchases")


def _admin(db, *statements: str) -> None:
    with psycopg.connect(db.url, autocommit=True) as admin:
        for s in statements:
            admin.execute(s)


def test_row_security_policies_and_ownership_as_postgresql_applies_them(reader):
    db, engine = reader
    t = _purchases(engine)
    assert t.can_select and not t.rls and not t.hidden and t.sees_rows is True and t.estimated_rows > 0

    _admin(db, "ALTER TABLE purchases ENABLE ROW LEVEL SECURITY")
    t = _purchases(engine)
    assert t.rls and t.rls_applies and t.hidden and t.sees_rows is False and t.policies == ()
    line = t.reason(READER)
    assert line.startswith(f"row level security hides purchases from {READER}: no policy applies to it; "
                           f"it sees none of ~{t.estimated_rows:,} rows")
    assert f"CREATE POLICY opsbench_read ON purchases FOR SELECT TO {READER} USING (true)" in line

    # a policy that lets through only some rows still hides the rest: refused, the policy named
    _admin(db, f"CREATE POLICY narrow ON purchases FOR SELECT TO {READER} USING (refunded_at IS NOT NULL)")
    t = _purchases(engine)
    assert t.hidden and t.policies == ("narrow",) and t.sees_rows is True
    assert "policies narrow decide which rows it sees" in t.reason(READER)

    # the fix the line names: every row visible
    _admin(db, "DROP POLICY narrow ON purchases",
           f"CREATE POLICY opsbench_read ON purchases FOR SELECT TO {READER} USING (true)")
    t = _purchases(engine)
    assert t.open_policy and not t.hidden and t.sees_rows is True

    # an owner bypasses row security, unless the table FORCEs it
    _admin(db, "DROP POLICY opsbench_read ON purchases", f"ALTER TABLE purchases OWNER TO {READER}")
    t = _purchases(engine)
    assert t.reader_owns and not t.rls_applies and not t.hidden
    _admin(db, "ALTER TABLE purchases FORCE ROW LEVEL SECURITY")
    t = _purchases(engine)
    assert t.force_rls and t.rls_applies and t.hidden and t.owner == READER


def test_a_guarded_engine_refuses_in_one_line_on_every_connection(reader):
    db, engine = reader
    _admin(db, "ALTER TABLE purchases ENABLE ROW LEVEL SECURITY")
    visibility.guard(engine, "analytics")
    for _ in range(2):  # the cached verdict refuses the next connection too, without another catalog read
        with pytest.raises(visibility.HiddenRows) as refused:
            with engine.connect():
                pass
        assert str(refused.value).startswith(f"row level security hides purchases from {READER}")
        assert "\n" not in str(refused.value)

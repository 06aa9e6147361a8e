"""The state store: schema `opsbench` in the state database.

DDL lives in `queries/state/migrations/NNN_*.sql`, applied in order once each
and recorded in `opsbench.schema_migrations`. Each file is written to be
idempotent anyway, so a half-applied file can simply run again.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from queries.loader import QUERIES_DIR

MIGRATIONS_DIR = QUERIES_DIR / "state" / "migrations"
# One advisory-lock key so two processes starting together do not race the DDL.
_MIGRATION_LOCK = 0x6F707362  # "opsb"


def migrate(engine: Engine) -> list[str]:
    """Apply pending migrations. Returns the names applied now."""
    applied_now: list[str] = []
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        conn.execute(sa.text("CREATE SCHEMA IF NOT EXISTS opsbench"))
        conn.execute(sa.text(
            "CREATE TABLE IF NOT EXISTS opsbench.schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        ))
        done = {r[0] for r in conn.execute(sa.text("SELECT name FROM opsbench.schema_migrations"))}
        for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
            if path.name in done:
                continue
            conn.exec_driver_sql(path.read_text(encoding="utf-8"))
            conn.execute(sa.text("INSERT INTO opsbench.schema_migrations (name) VALUES (:n)"), {"n": path.name})
            applied_now.append(path.name)
    return applied_now

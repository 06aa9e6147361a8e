"""The state store: schema `opsbench` in the state database.

DDL lives in `queries/internal/state/migrations/NNN_*.sql`, applied in order once each
and recorded in `opsbench.schema_migrations`. Each file is written to be
idempotent anyway, so a half-applied file can simply run again.
"""

from __future__ import annotations

import threading
import weakref

from sqlalchemy.engine import Engine

from ops.core.settings import Settings
from queries.loader import INTERNAL_DIR, load

MIGRATIONS_DIR = INTERNAL_DIR / "state" / "migrations"
# One advisory-lock key so two processes starting together do not race the DDL.
_MIGRATION_LOCK = 0x6F707362  # "opsb"


def migrate(engine: Engine) -> list[str]:
    """Apply pending migrations. Returns the names applied now."""
    applied_now: list[str] = []
    sql = load("state/bookkeeping")
    with engine.begin() as conn:
        sql.migration_lock.execute(conn, key=_MIGRATION_LOCK)
        sql.ensure_schema.execute(conn)
        sql.ensure_migrations_table.execute(conn)
        done = {r[0] for r in sql.applied.execute(conn)}
        for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
            if path.name in done:
                continue
            conn.exec_driver_sql(path.read_text(encoding="utf-8"))
            sql.record.execute(conn, name=path.name)
            applied_now.append(path.name)
    return applied_now


# Engines already migrated in this process: migrating is idempotent but costs a
# round trip and a lock, so each engine does it once. Weak, so it holds nothing alive.
_migrated: "weakref.WeakSet[Engine]" = weakref.WeakSet()
_migrated_lock = threading.Lock()


def migrate_once(engine: Engine) -> Engine:
    """`migrate(engine)` the first time this engine is seen in this process; returns the engine."""
    with _migrated_lock:
        if engine not in _migrated:
            migrate(engine)
            _migrated.add(engine)
    return engine


def state_engine(settings: Settings, *, migrated: bool = True) -> Engine:
    """The state store's engine (role `state`), migrated unless `migrated=False`."""
    from ops.data import db

    engine = db.engine("state", settings)
    return migrate_once(engine) if migrated else engine

"""The state store: schema `opsbench` in the state database.

Its DDL and how it is applied is ops/data/migrations.py (re-exported here);
`state_engine` is the migrated engine of the process's runtime. The rollups
import the migrations, not this module, so the runtime can stand below them.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from ops.core.settings import Settings
from ops.data import runtime
from ops.data.migrations import MIGRATIONS_DIR, migrate, migrate_once  # noqa: F401 - re-exported


def state_engine(settings: Settings, *, migrated: bool = True) -> Engine:
    """The state store's engine (role `state`), migrated unless `migrated=False`."""
    engine = runtime.for_settings(settings).engine("state")
    return migrate_once(engine) if migrated else engine

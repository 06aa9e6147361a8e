"""The process's engines by role: `db.analytics()`, `db.maintenance()`, `db.state()`.

Each is the pooled engine of the process's runtime for the settings
(ops/data/runtime.py); how an engine of a role is made (DSNs, session
settings, the embedded fallback) is ops/data/engines.py, re-exported here.

The analytics engine carries its runtime's series read path (ops/data/series.py):
`queries.<series>(engine)` on it reads closed days from the rollups, everything
else raw, as `series.read` does (see "How a series is read" in the README).
Nothing below imports this module: no import circle through the data layer.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from ops.core.settings import Settings, get_settings
from ops.data import runtime
from ops.data.engines import (ResolvedDsn, Role, application_name, make_engine, resolve,  # noqa: F401 - re-exported
                              sqlalchemy_url)


def engine(role: Role | str = Role.analytics, settings: Settings | None = None) -> Engine:
    """The pooled engine for `role` of the process's runtime for these settings (ops.data.runtime)."""
    return runtime.for_settings(settings or get_settings()).engine(role)


def analytics(settings: Settings | None = None) -> Engine:
    return engine(Role.analytics, settings)


def maintenance(settings: Settings | None = None) -> Engine:
    return engine(Role.maintenance, settings)


def state(settings: Settings | None = None) -> Engine:
    return engine(Role.state, settings)


def dispose_all() -> None:
    """Close every pool this process opened (tests between databases, forks)."""
    runtime.dispose_all()

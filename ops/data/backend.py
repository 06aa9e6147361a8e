"""Which backend the state store describes.

The state store's derived state (rollups, alerts, rule evaluations, job runs,
probe samples, cleanup and reconciliation history) is about one analytics
database. `current(analytics)` reads the live backend's identity (the cluster's
`system_identifier` from pg_control_system(), plus current_database()), and
`stored(state)` the one recorded in `opsbench.backend_identity`
(queries/internal/state/migrations/080_backend.sql). `compare` says whether they match;
readers that find a mismatch read raw (ops/data/rollups.py), and the daemon
acts on it (ops/alerting/rebind.py: close the old backend's alerts, forget its
rollups, one outbox message, store the new identity).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

import queries
from ops.core.clock import utc_now
from queries.loader import connection


@dataclass(frozen=True)
class Identity:
    system_identifier: str
    database: str

    def __str__(self) -> str:
        return f"{self.database}@{self.system_identifier}"


@dataclass(frozen=True)
class Comparison:
    live: Identity
    stored: Identity | None     # None: nothing recorded yet (a fresh store, or one from before 080)

    @property
    def changed(self) -> bool:
        """The store describes another backend than the live one."""
        return self.stored is not None and self.stored != self.live


def _raw() -> queries.Subject:
    return queries.load("backend")


def _sql() -> queries.Subject:
    return queries.load("state/backend")


def current(analytics: sa.Engine | sa.Connection) -> Identity:
    """The live backend's identity (raises SQLAlchemyError when it cannot be reached)."""
    with connection(analytics) as c:
        row = _raw().identity.execute(c).one()
    return Identity(str(row.system_identifier), str(row.database))


def stored(state: sa.Engine | sa.Connection) -> Identity | None:
    """The identity the state store records, None when none is (or the table does not exist yet)."""
    with connection(state) as c:
        if not _sql().has_table.execute(c).scalar_one():
            return None
        row = _sql().get.execute(c).one_or_none()
    return Identity(row.system_identifier, row.database) if row else None


def compare(analytics: sa.Engine | sa.Connection, state: sa.Engine | sa.Connection) -> Comparison:
    return Comparison(current(analytics), stored(state))


def describes_other(analytics: sa.Engine | sa.Connection, state: sa.Engine | sa.Connection) -> Identity | None:
    """The stored identity when it is not the live backend's, else None (never raises)."""
    try:
        cmp = compare(analytics, state)
    except sa.exc.SQLAlchemyError:
        return None
    return cmp.stored if cmp.changed else None


def lock(conn: sa.Connection) -> None:
    _sql().lock.execute(conn)


def record(conn: sa.Connection, identity: Identity, now: dt.datetime | None = None, *,
           since: dt.datetime | None = None) -> None:
    """Store `identity` as the backend the state describes (inside the caller's transaction).

    `since`: derived rows older than this belong to another backend and are no longer read
    (opsbench.backend_since(), 110_backend_since.sql); None when the store never described another.
    """
    _sql().put.execute(conn, system_identifier=identity.system_identifier, database=identity.database,
                       at=now or utc_now(), since=since)


def predates_binding(conn: sa.Connection) -> bool:
    """The store was made before backend binding and holds derived state of a backend nobody recorded."""
    sql = _sql()
    return bool(sql.predates_binding.execute(conn).scalar_one()) and \
        bool(sql.has_derived_state.execute(conn).scalar_one())


def switched_at(state: sa.Engine | sa.Connection) -> dt.datetime | None:
    """When the store last switched to the backend it describes now; None if it never did (or is unreadable)."""
    try:
        with connection(state) as c:
            if not _sql().has_table.execute(c).scalar_one():
                return None
            at = _sql().switched_at.execute(c).scalar_one_or_none()
    except sa.exc.SQLAlchemyError:
        return None
    return at


def forget_evaluations(conn: sa.Connection) -> None:
    _sql().forget_evaluations.execute(conn)


def clear(conn: sa.Connection) -> None:
    _sql().delete.execute(conn)


def rollup_zones(conn: sa.Connection) -> list[str]:
    return [r[0] for r in _sql().rollup_zones.execute(conn)]

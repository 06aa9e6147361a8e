"""Bind the state store to the backend it describes, and act when the backend changes.

`ops/data/backend.py` computes and compares the identities; this module does
what a change means, in one state transaction:

* every pending/firing alert of the old backend closes with note
  "backend changed" (no RESOLVED page: nothing was seen to recover);
* every zone's rollups are forgotten (the readers already read raw on a
  mismatch; the daemon runs the `rollups` job at once to backfill from the new
  backend) and so are the rule evaluations;
* job runs, probe samples, cleanup and reconciliation history stay, but no
  reader looks at rows from before the switch (opsbench.backend_since());
* exactly one outbox message says what happened;
* the new identity is stored.

A store made before backend binding that already holds derived state counts
as another backend ("unknown"): nobody recorded which backend that state is
about.

The daemon calls `ensure` when it starts and before each job run (runner);
`opsbench state reset` calls `reset` by hand.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

import queries
from ops.alerting import manager, outbox
from ops.alerting.telegram import html as messages
from ops.core.clock import utc_now
from ops.data import backend
from ops.data import state as state_store


NOTE = "backend changed"


@dataclass(frozen=True)
class Switch:
    old: backend.Identity | None
    new: backend.Identity
    alerts_closed: int
    zones_forgotten: list[str]
    rows_forgotten: int

    @property
    def text(self) -> str:
        old = str(self.old) if self.old else "unknown"
        return (f"backend changed from {old} to {self.new}: {self.alerts_closed} alerts closed, "
                "rollups rebuilding")


def _forget_all(conn: sa.Connection) -> tuple[list[str], int]:
    sql = queries.load("state/rollups")
    zones = backend.rollup_zones(conn)
    rows = 0
    for tz in zones:
        sql.lock_zone.execute(conn, tz=tz)
        rows += int(sql.forget_zone.execute(conn, tz=tz).scalar_one())
    return zones, rows


def _switch(conn: sa.Connection, old: backend.Identity | None, new: backend.Identity, now: dt.datetime,
            note: str, message: bool = True) -> Switch:
    closed = manager.close(conn, note, now)
    zones, rows = _forget_all(conn)
    backend.forget_evaluations(conn)
    # job runs, probe samples, cleanup and reconciliation history stay as a record, but every reader
    # leaves out what is older than `since` (opsbench.backend_since())
    backend.record(conn, new, now, since=now)
    result = Switch(old, new, len(closed), zones, rows)
    if message:
        outbox.enqueue(conn, f"⚠️ opsbench: {messages.escape(result.text)}", source="backend", now=now)
    return result


def ensure(analytics: sa.Engine, state: sa.Engine, now: dt.datetime | None = None) -> Switch | None:
    """Record the live backend when none is; on a different one, switch (see module doc). None: no change."""
    now = now or utc_now()
    state_store.migrate_once(state)
    live = backend.current(analytics)
    if backend.stored(state) == live:
        return None                                   # the common case: one cheap read, no lock
    with state.begin() as conn:
        backend.lock(conn)
        old = backend.stored(conn)                    # again under the lock: another process may have switched
        if old == live:
            return None
        if old is None and not backend.predates_binding(conn):
            backend.record(conn, live, now)           # a fresh store: whatever it holds is this backend's
            return None
        result = _switch(conn, old, live, now, NOTE)
    return result  # the caller says so: the daemon in its log, a command as a note on stderr


def reset(analytics: sa.Engine, state: sa.Engine, now: dt.datetime | None = None) -> Switch:
    """`opsbench state reset`: the same as a backend change, by hand, whatever is stored."""
    now = now or utc_now()
    state_store.migrate_once(state)
    live = backend.current(analytics)
    with state.begin() as conn:
        backend.lock(conn)
        old = backend.stored(conn)
        result = _switch(conn, old, live, now, "state reset by hand", message=False)
        outbox.enqueue(conn, f"⚠️ opsbench: state reset by hand for {messages.escape(str(live))}: "
                             f"{result.alerts_closed} alerts closed, rollups rebuilding",
                       source="backend", now=now)
    return result

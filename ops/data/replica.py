"""A read replica for analytics: is the analytics database a standby, and how far behind.

A founder whose backend grows points DATABASE_URL at a streaming standby so
analytics never load the primary. Two things change: the figures lag the
primary by the replication delay (reports say so past LAG_NOTE_S, doctor
reports it always), and the standby may cancel a query whose rows replay is
about to remove ("conflict with recovery", SQLSTATE 40001): the named-query
loader runs such a query once more and otherwise refuses in one line
(queries/loader.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import queries

# replication lag worth a line in a report: below it, figures are as fresh as anyone needs
LAG_NOTE_S = 300.0


@dataclass(frozen=True)
class ReplicaStatus:
    standby: bool
    lag_s: float | None


def status(conn) -> ReplicaStatus:
    row = queries.load("tools/session").replica_status.execute(conn).one()
    return ReplicaStatus(bool(row.standby), None if row.lag_s is None else float(row.lag_s))


def lag_note(conn, threshold_s: float | None = None) -> str | None:
    """A report's note when the analytics database is a standby more than LAG_NOTE_S behind, else None."""
    s = status(conn)
    limit = LAG_NOTE_S if threshold_s is None else threshold_s
    if not s.standby or s.lag_s is None or s.lag_s <= limit:
        return None
    return (f"the analytics database is a read replica {s.lag_s / 60:.0f} min behind its primary: "
            "the latest rows may be missing from these figures")

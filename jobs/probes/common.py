"""What the probes share with the other jobs: the rule a dead database raises, and probe history.

`DATABASE_UNREACHABLE` is the root-cause rule other jobs name in `requires` (they skip,
not fail, while the backend is down); `record_state` writes samples to the state store
(`opsbench.probe_samples`) and never lets a state store that cannot be written hide a finding.
"""

from __future__ import annotations

from typing import Any, Iterable

import sqlalchemy as sa

import queries
from ops.contract import JobContext
from ops.core.redact import redact
from ops.data import state as state_store

# Rule name. Other jobs refer to it in `requires`.
DATABASE_UNREACHABLE = "database_unreachable"


def record_state(ctx: JobContext, statement: str, rows: Iterable[dict[str, Any]]) -> bool:
    """Insert rows with a named state statement (`state/probes.<statement>`).

    History is a side effect: when the state store is down the job's findings
    still matter more, so a failure here is logged and reported as False.
    A dry run (`opsbench run --dry-run`) records nothing.
    """
    rows = list(rows)
    if not rows:
        return True

    def write(engine: sa.Engine) -> None:
        state_store.migrate_once(engine)
        q = getattr(queries.load("state/probes"), statement)
        with engine.begin() as conn:
            conn.execute(q.statement, [q.bind(**r) for r in rows])

    try:
        ctx.record(write)  # a dry run: nothing is called, nothing written
        return True
    except Exception as exc:  # noqa: BLE001 - history must never fail the job
        ctx.logger.warning("could not record %s in the state store: %s", statement, redact(exc).splitlines()[0])
        return False

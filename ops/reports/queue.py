"""A report into the outbox: the text first, then its charts as silent messages, in one transaction."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Connection

from ops.alerting import outbox
from ops.reports.charts import ChartSet


def enqueue(conn: Connection, text: str, chart_set: ChartSet, *, source: str,
            now: dt.datetime | None = None) -> list[int]:
    """Queue the report inside the caller's transaction. Returns the outbox ids, in delivery order."""
    ids = outbox.enqueue(conn, text, source=source, now=now)
    for a in chart_set.attachments:
        # silent: the text already notified; the charts follow it quietly
        ids += outbox.enqueue(conn, a.caption, kind=a.kind, payload=a.data, filename=a.filename, silent=True,
                              source=source, now=now)
    return ids

"""Evidence rows: what a finding may carry into a chat message."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pandas as pd

from jobs.evidence import evidence_rows

USER = "33b9e7e9-a224-a2f7-a47b-76a240b79692"


def test_rows_are_json_friendly_anonymised_and_redacted():
    df = pd.DataFrame({
        "job_id": [uuid.UUID(USER)],
        "user_id": [USER],
        "email": ["founder@example.com"],
        "started_at": [pd.NaT],
        "created_at": [pd.Timestamp("2026-11-22 23:51", tz="UTC")],
        "amount": [Decimal("12.345678")],
        "ratio": [float("nan")],
        "query": ["SELECT 1 -- postgresql://app:hunter2@db/prod"],
    })
    (row,) = evidence_rows(df)
    assert row["job_id"] == USER                      # job ids stay whole: the founder looks them up
    assert row["user_id"] == USER[:8]                 # user ids shortened as the seeds do
    assert "email" not in row
    assert row["started_at"] is None and row["ratio"] is None
    assert row["created_at"] == "2026-11-22T23:51:00+00:00"
    assert row["amount"] == 12.3457
    assert "hunter2" not in row["query"]


def test_limit_applies_to_frames_and_records():
    rows = [{"n": i, "at": dt.date(2026, 1, 1)} for i in range(10)]
    assert evidence_rows(rows, 3) == [{"n": i, "at": "2026-01-01"} for i in range(3)]
    assert len(evidence_rows(pd.DataFrame(rows), 4)) == 4

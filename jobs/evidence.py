"""Evidence rows for findings: the first offending rows, fit for a chat message.

Every job turns query rows into evidence through here, so the same rules hold
for all of them: JSON-friendly values, NULL-likes (None, NaN, NaT) as None,
user ids shortened to 8 characters (enough to find the user, not to
expose the id in a chat), private
columns left out, and secrets redacted from any text.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any, Iterable, Mapping

import pandas as pd

from ops.core.redact import redact

PRIVATE_COLUMNS = frozenset({"email"})


def _is_user_column(column: str) -> bool:
    return column == "user" or column.endswith("user_id") or column == "admin"


def clean_value(column: str, value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [clean_value(column, v) for v in value]
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (pd.Timestamp, dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, bool) or isinstance(value, int):
        return value
    text = str(value) if not isinstance(value, str) else value
    if isinstance(value, uuid.UUID) or _is_user_column(column):
        return text[:8] if _is_user_column(column) else text
    return redact(text)


def clean_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: clean_value(k, v) for k, v in row.items() if k not in PRIVATE_COLUMNS}


def evidence_rows(rows: pd.DataFrame | Iterable[Mapping[str, Any]], limit: int | None = None) -> list[dict[str, Any]]:
    """The first `limit` rows (all when None), cleaned."""
    if isinstance(rows, pd.DataFrame):
        frame = rows if limit is None else rows.head(limit)
        records: Iterable[Mapping[str, Any]] = frame.astype(object).to_dict(orient="records")
    else:
        records = rows
    out = []
    for row in records:
        if limit is not None and len(out) >= limit:
            break
        out.append(clean_row(row))
    return out

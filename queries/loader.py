"""Named SQL queries from `.sql` files, exposed as Python functions.

A subject file (`queries/revenue.sql`) holds blocks like::

    -- name: daily
    -- Daily gross, refunds and net revenue from production purchases.
    -- :param start date            first local day (inclusive)
    -- :param end date              last local day (inclusive)
    -- :param tz tz = REPORT_TZ     IANA zone the days are cut in (REPORT_TZ when not given)
    SELECT ... WHERE purchased_at >= :start ...

`queries.revenue.daily(conn, start=..., end=..., tz=...)` runs the block with
every value bound (never pasted into the SQL) and returns a DataFrame.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa
else:
    class _OnFirstUse:
        """SQLAlchemy imported when a query first runs, not when one is parsed: `opsbench query --list`
        lists every query without it (importing it took longer than Python's own start)."""

        def __getattr__(self, name: str) -> Any:
            import sqlalchemy

            return getattr(sqlalchemy, name)

    sa = _OnFirstUse()

from ops.core.clock import parse_zone
from ops.core.errors import QueryError

QUERIES_DIR = Path(__file__).resolve().parent
# Files that are not named-query subjects exposed to users.
_NOT_SUBJECTS = {"schema"}
# The subject that also holds every shipped check file as a query of its own.
CHECKS_SUBJECT = "reconciliation"

_NAME = re.compile(r"^--\s*name:\s*(?P<name>[a-z_][a-z0-9_]*)\s*$")
_PARAM = re.compile(
    r"^--\s*:param\s+(?P<name>[a-z_][a-z0-9_]*)\s+(?P<type>\w+(?:\[\])?)"
    r"(?:\s*=\s*(?P<default>\S+))?\s*(?P<doc>.*)$"
)

# seconds between a query a standby cancelled for a recovery conflict and its one retry
RECOVERY_RETRY_PAUSE_S = 1.0


# Parameter pairs that bound a window: the second may not come before the first.
_WINDOW_PAIRS = (("start", "end"), ("since", "until"))


def _parse_date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v).strip())


def _parse_timestamptz(v: Any) -> dt.datetime:
    if isinstance(v, dt.datetime) and hasattr(v, "to_pydatetime"):  # a pandas Timestamp
        v = v.to_pydatetime()
    if not isinstance(v, dt.datetime):
        v = dt.datetime.fromisoformat(str(v).strip())
    if v.tzinfo is None:
        raise ValueError("needs a time zone offset, e.g. 2026-11-01T00:00:00+00:00")
    return v


def _parse_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _parse_tz(v: Any) -> str:
    """A zone for SQL: its IANA name (a ZoneInfo or a name string)."""
    return parse_zone(v).key


# `-- :param tz tz = REPORT_TZ`: the zone comes from the settings (REPORT_TZ) when
# the caller gives none, so the Python API cuts days where the CLI does.
REPORT_TZ_DEFAULT = "REPORT_TZ"


def _report_tz() -> str:
    from ops.core.settings import get_settings

    return get_settings().report_tz


# `-- :param commission commission = COMMISSION`: the founder's commission file
# (OPSBENCH_COMMISSION) as the JSON revenue.sql reads; NULL when none is configured,
# and the query's proceeds are NULL ("not configured"), never net at 0 %.
COMMISSION_DEFAULT = "COMMISSION"


def _settings_commission() -> str | None:
    from ops.core.settings import get_settings

    c = get_settings().commission
    return c.to_json() if c is not None else None


def _parse_commission(v: Any) -> str:
    """A commission for SQL: a Commission (ops/core/commission.py), the path of a file, or its JSON."""
    if hasattr(v, "to_json"):
        return v.to_json()
    text = str(v).strip()
    if text.lower() in ("", "none"):
        return None   # explicitly none: proceeds NULL whatever the settings say
    if text.startswith("{"):
        import json

        json.loads(text)
        return text
    from ops.core import commission

    return commission.load(Path(text)).to_json()


_INT_MAX = 2**63 - 1  # PostgreSQL bigint (advisory lock keys use all of it)


def _parse_int(v: Any) -> int:
    # every int parameter is a count, an id or a lock key: never negative
    if isinstance(v, bool):
        raise ValueError("expected an integer")
    n = v if isinstance(v, int) else int(str(v).strip())
    if not 0 <= n <= _INT_MAX:
        raise ValueError("out of range")
    return n


def _parse_interval(v: Any) -> dt.timedelta:
    if isinstance(v, dt.timedelta):
        td = v
    else:
        import pandas as pd

        td = pd.Timedelta(str(v)).to_pytimedelta()
    if td < dt.timedelta(0):
        raise ValueError("negative duration")
    return td


_TYPES: dict[str, tuple[Any, str]] = {
    "date": (_parse_date, "a date YYYY-MM-DD"),
    "timestamptz": (_parse_timestamptz, "an ISO timestamp with offset"),
    "int": (_parse_int, f"a whole number from 0 to {_INT_MAX}"),
    "float": (lambda v: float(str(v).strip()) if not isinstance(v, (int, float)) else float(v), "a number"),
    "text": (lambda v: str(v), "text"),
    "bool": (_parse_bool, "true or false"),
    "tz": (_parse_tz, "an IANA time zone name"),
    "interval": (_parse_interval, "a duration such as 15min or 2h"),
    "uuid": (lambda v: str(uuid.UUID(str(v).strip())), "a UUID"),
    "commission": (_parse_commission, "a commission file (TOML or CSV, see ops/core/commission.py)"),
}


def _type(name: str) -> tuple[Any, str] | None:
    """(parser, what is expected) of a parameter type; `T[]` is a list of T (bound as an array)."""
    if name.endswith("[]"):
        inner = _TYPES.get(name[:-2])
        if inner is None:
            return None
        parse, expected = inner
        return (lambda v: [parse(x) for x in v] if isinstance(v, (list, tuple)) else _not_a_list(v),
                f"a list of {expected}")
    return _TYPES.get(name)


def _not_a_list(v: Any):
    raise ValueError("expected a list")


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: str | None
    doc: str

    @property
    def required(self) -> bool:
        return self.default is None

    def coerce(self, value: Any) -> Any:
        parse, expected = _type(self.type)
        if value is None:
            raise QueryError(f"parameter {self.name!r}: expected {expected}, got nothing")
        try:
            return parse(value)
        except (ValueError, TypeError, OverflowError):
            raise QueryError(f"parameter {self.name!r}: expected {expected}, got {str(value)[:60]!r}") from None


# Rollup-aware readers by qualified name, registered from above (ops/data/series.py; the
# loader may not import it): reader(conn, bound params) -> DataFrame, or None to read raw.
_readers: dict[str, Callable[[Any, dict[str, Any]], "pd.DataFrame | None"]] = {}


def register_reader(qualified: str, reader: Callable[[Any, dict[str, Any]], "pd.DataFrame | None"]) -> None:
    _readers[qualified] = reader


def reader_for(qualified: str) -> Callable[[Any, dict[str, Any]], "pd.DataFrame | None"] | None:
    """The rollup-aware reader registered for a query, None for a query that only reads raw."""
    return _readers.get(qualified)


# count_and_head wraps a query in this (a check's error position is mapped back through it)
HEAD_PREFIX = "SELECT q.*, count(*) OVER () AS opsbench_total FROM (\n"


@dataclass(frozen=True)
class NamedQuery:
    subject: str
    name: str
    description: str
    params: tuple[Param, ...]
    sql: str = field(repr=False)

    @property
    def qualified_name(self) -> str:
        return f"{self.subject}.{self.name}"

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def bind(self, **values: Any) -> dict[str, Any]:
        """Validate and convert parameter values; fill defaults."""
        known = {p.name for p in self.params}
        unknown = sorted(set(values) - known)
        if unknown:
            raise QueryError(
                f"{self.qualified_name}: unknown parameter {unknown[0]!r} "
                f"(expected: {', '.join(sorted(known)) or 'none'})"
            )
        bound: dict[str, Any] = {}
        for p in self.params:
            if p.name in values and values[p.name] is not None:
                bound[p.name] = p.coerce(values[p.name])
            elif p.default == REPORT_TZ_DEFAULT:
                bound[p.name] = p.coerce(_report_tz())
            elif p.default == COMMISSION_DEFAULT:
                bound[p.name] = _settings_commission()
            elif p.default is not None:
                bound[p.name] = None if p.default == "null" else p.coerce(p.default)
            else:
                raise QueryError(f"{self.qualified_name}: missing parameter {p.name!r} ({p.doc or p.type})")
        # a reversed window would quietly return no rows; say so instead
        for lo, hi in _WINDOW_PAIRS:
            if bound.get(lo) is not None and bound.get(hi) is not None and bound[hi] < bound[lo]:
                raise QueryError(f"{self.qualified_name}: {hi!r} ({bound[hi]}) is before {lo!r} ({bound[lo]})")
        return bound

    @property
    def statement(self) -> sa.TextClause:
        return sa.text(self.sql)

    def execute(self, conn, **values: Any) -> sa.CursorResult:
        bound = self.bind(**values)
        return self._once_more_on_recovery_conflict(conn, lambda: conn.execute(self.statement, bound))

    def _once_more_on_recovery_conflict(self, conn, run: Callable[[], Any]) -> Any:
        """`run()`, again once if a standby cancelled it for a recovery conflict (a read replica replaying
        what the query reads); a second such cancel is refused in one line (QueryError) with the fix."""
        try:
            return run()
        except sa.exc.DBAPIError as e:
            if not _recovery_conflict(e):
                raise
        if isinstance(conn, sa.Connection):
            conn.rollback()      # the cancelled transaction is aborted; the retry opens another
        # give replay the moment it needs to take the lock our query held it back from: a retry at once can
        # take its own lock first and be cancelled again for the same change (seen under load)
        time.sleep(RECOVERY_RETRY_PAUSE_S)
        try:
            return run()
        except sa.exc.DBAPIError as e:
            if not _recovery_conflict(e):
                raise
            first = (str(e.orig).strip().splitlines() or ["conflict with recovery"])[0]
            raise QueryError(
                f"{self.qualified_name}: the read replica cancelled it twice ({first}): on the standby set "
                "hot_standby_feedback = on or a larger max_standby_streaming_delay, or point DATABASE_URL at the "
                "primary") from None

    def __call__(self, conn, **values: Any) -> pd.DataFrame:
        """The query's rows as a DataFrame.

        A daily-series query (revenue.daily, activity.daily, errors.daily,
        errors.durations, errors.by_code, activity.summary) called with an
        engine opsbench made from its settings is rollup-aware: the closed days
        the state store's rollups hold for this backend are read from them,
        the rest from the raw tables, with the same numbers (ops/data/series.py
        registers the readers; see `reader_for`). `raw()` always reads the raw tables.
        """
        bound = self.bind(**values)
        reader = _readers.get(self.qualified_name)
        if reader is not None:
            df = reader(conn, bound)
            if df is not None:
                return df
        return self._frame_of(conn, bound)

    def raw(self, conn, **values: Any) -> pd.DataFrame:
        """The query on the raw tables, never through the rollups: the reference every rollup reader equals."""
        return self._frame_of(conn, self.bind(**values))

    def _frame_of(self, conn, bound: dict[str, Any]) -> pd.DataFrame:
        with connection(conn) as c:
            return self._once_more_on_recovery_conflict(c, lambda: _frame(c.execute(self.statement, bound)))

    def count_and_head(self, conn, limit: int, **values: Any) -> tuple[int, list[dict[str, Any]]]:
        """(how many rows the query returns, the first `limit` of them as dicts), in one plain statement.

        For a check that needs a count and a few evidence rows. Not a
        server-side cursor: PostgreSQL plans a cursor for fast first rows and
        without parallel workers, which turns a whole-table anti-join into one
        index probe per row.
        """
        total, rows, _ = self.count_head_and_columns(conn, limit, **values)
        return total, rows

    def count_head_and_columns(self, conn, limit: int, **values: Any) -> tuple[int, list[dict[str, Any]], list[str]]:
        """`count_and_head` plus the result's column names (known even when it has no rows; [] when limit <= 0)."""
        bound = self.bind(**values)
        with connection(conn) as c:
            if limit <= 0:
                total = self._once_more_on_recovery_conflict(c, lambda: c.execute(
                    sa.text(f"SELECT count(*) FROM (\n{self.sql}\n) AS q"), bound).scalar_one())
                return int(total), [], []

            def head() -> tuple[list[str], list[dict[str, Any]]]:
                result = c.execute(sa.text(f"{HEAD_PREFIX}{self.sql}\n) AS q LIMIT {int(limit)}"), bound)
                return [k for k in result.keys() if k != "opsbench_total"], [dict(r._mapping) for r in result]

            columns, rows = self._once_more_on_recovery_conflict(c, head)
        total = int(rows[0].pop("opsbench_total")) if rows else 0
        for r in rows[1:]:
            r.pop("opsbench_total", None)
        return total, rows, columns

    def stream(self, conn, chunk_rows: int = 10_000, **values: Any) -> Iterator[tuple[list[str], list[tuple]]]:
        """Yield (columns, rows) chunks through a server-side cursor: flat memory for any size."""
        bound = self.bind(**values)
        with connection(conn) as c:
            result = c.execution_options(stream_results=True, yield_per=chunk_rows).execute(self.statement, bound)
            cols = list(result.keys())
            for part in result.partitions(chunk_rows):
                yield cols, [tuple(r) for r in part]


def _recovery_conflict(err: sa.exc.DBAPIError) -> bool:
    """A standby cancelled the statement because replay needed what it read (SQLSTATE 40001)."""
    orig = getattr(err, "orig", None)
    return getattr(orig, "sqlstate", None) == "40001" and "conflict with recovery" in str(orig).lower()


class connection:
    """`with connection(engine_or_connection) as conn`: open (and close) a connection only for an Engine."""

    def __init__(self, conn):
        self._given = conn
        self._owned = None

    def __enter__(self) -> sa.Connection:
        if isinstance(self._given, sa.Engine):
            self._owned = self._given.connect()
            return self._owned
        return self._given

    def __exit__(self, *exc) -> None:
        if self._owned is not None:
            self._owned.close()


# PostgreSQL type OIDs of float4, float8 and numeric: these columns become float64
# even when every value is NULL (a ratio on days without data), so a column's
# dtype does not depend on the data.
_FLOAT_OIDS = {700, 701, 1700}
_TIMESTAMPTZ_OID = 1184


def _frame(result: sa.CursorResult) -> pd.DataFrame:
    # pandas is imported here, not at the top: `opsbench query --list` and the CLI's start need no pandas
    import pandas as pd

    description = getattr(result.cursor, "description", None) or ()
    float_cols = [d.name for d in description if getattr(d, "type_code", None) in _FLOAT_OIDS]
    # timestamptz columns are datetime64[UTC] even when every value is NULL, so
    # `resolved_at - fired_at` works on a window where nothing resolved yet
    tstz_cols = [d.name for d in description if getattr(d, "type_code", None) == _TIMESTAMPTZ_OID]
    rows = result.fetchall()
    df = pd.DataFrame.from_records([tuple(r) for r in rows], columns=list(result.keys()))
    for col in float_cols:
        if col in df.columns and df.columns.tolist().count(col) == 1:
            df[col] = df[col].astype("float64")
    for col in tstz_cols:
        if col in df.columns and df.columns.tolist().count(col) == 1:
            df[col] = pd.to_datetime(df[col], utc=True)
    # numeric -> Decimal objects; DataFrames and plotly want floats
    for col in df.columns:
        if df[col].dtype == object and len(df) and df[col].map(lambda x: isinstance(x, Decimal) or x is None).all() \
                and df[col].map(lambda x: isinstance(x, Decimal)).any():
            df[col] = df[col].astype("float64")
    return df


def _quiet_comment(line: str) -> str:
    """Escape colons in a whole-line `--` comment.

    sqlalchemy.text() does not know SQL comments: `-- :param start date` would
    otherwise become a required bind parameter named `param`.
    """
    return line.replace(":", "\\:")


def parse_sql_file(path: Path, subject: str | None = None) -> dict[str, NamedQuery]:
    subject = subject or path.stem
    out: dict[str, NamedQuery] = {}
    current: str | None = None
    header = True
    desc: list[str] = []
    params: list[Param] = []
    body: list[str] = []

    def flush() -> None:
        if current is None:
            return
        sql = "\n".join(body).strip().rstrip(";").strip()
        if not sql:
            raise ValueError(f"{path.name}: query {current!r} has no SQL")
        if current in out:
            raise ValueError(f"{path.name}: query {current!r} defined twice")
        out[current] = NamedQuery(subject, current, " ".join(desc[:1]).strip(), tuple(params), sql)

    for line in path.read_text(encoding="utf-8").splitlines():
        m = _NAME.match(line.strip())
        if m:
            flush()
            current, header, desc, params, body = m["name"], True, [], [], []
            continue
        if current is None:
            continue
        stripped = line.strip()
        if header and stripped.startswith("--"):
            pm = _PARAM.match(stripped)
            if pm:
                if _type(pm["type"]) is None:
                    raise ValueError(f"{path.name}:{current}: unknown parameter type {pm['type']!r}")
                params.append(Param(pm["name"], pm["type"], pm["default"], pm["doc"].strip()))
            else:
                text = stripped.lstrip("-").strip()
                if text:
                    desc.append(text)
            body.append(_quiet_comment(line))
            continue
        if stripped:
            header = False
        body.append(_quiet_comment(line) if stripped.startswith("--") else line)
    flush()
    return out


@dataclass(frozen=True)
class Subject:
    name: str
    queries: dict[str, NamedQuery]

    def __getattr__(self, item: str) -> NamedQuery:
        try:
            return self.queries[item]
        except KeyError:
            raise AttributeError(f"queries.{self.name} has no query {item!r}") from None

    def __dir__(self):
        return list(self.queries)


@cache
def load(subject: str) -> Subject:
    """Load `queries/<subject>.sql` (subject may contain a folder: `state/outbox`)."""
    path = QUERIES_DIR / f"{subject}.sql"
    if not path.is_file():
        raise QueryError(f"unknown query subject {subject!r}")
    own = parse_sql_file(path, subject)
    if subject == CHECKS_SUBJECT:
        # the shipped checks (queries/checks/*.sql) are this subject's queries too, before its own
        from queries import checkfile

        checks = {c.name: NamedQuery(subject, c.name, c.description, (), c.sql) for c in checkfile.shipped()}
        clash = sorted(set(checks) & set(own))
        if clash:
            raise ValueError(f"{path.name}: query {clash[0]!r} is also a check file")
        own = {**checks, **own}
    return Subject(subject, own)


def subjects() -> list[str]:
    return sorted(p.stem for p in QUERIES_DIR.glob("*.sql") if p.stem not in _NOT_SUBJECTS)


def all_queries() -> list[NamedQuery]:
    return [q for s in subjects() for q in load(s).queries.values()]


def get(qualified: str) -> NamedQuery:
    """`revenue.daily` -> the NamedQuery."""
    subject, _, name = qualified.partition(".")
    if not name:
        raise QueryError(f"unknown query {qualified!r}: use SUBJECT.NAME, see `opsbench query --list`")
    if subject not in subjects():
        raise QueryError(f"unknown query {qualified!r}: no subject {subject!r} (have: {', '.join(subjects())})")
    q = load(subject).queries.get(name)
    if q is None:
        raise QueryError(f"unknown query {qualified!r}: see `opsbench query --list`")
    return q


def script(relative: str) -> str:
    """The text of a whole SQL file (DDL, generator) under queries/."""
    return (QUERIES_DIR / relative).read_text(encoding="utf-8")

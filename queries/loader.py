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
import itertools
import re
import time
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
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
# opsbench's own SQL, apart from the founder's subjects: the daemon's state store (DDL, persistence),
# the rollup extraction, the backend's identity, the backtest, the demo generator, the bench, the
# doctor's catalog queries and cleanup. Its subjects load by name as before (`load("state/outbox")`,
# `queries.rollups`) but `subjects()` and `opsbench query --list` leave them out.
INTERNAL_DIR = QUERIES_DIR / "internal"
# Files that are not named-query subjects at all (the backend's tables, as DDL).
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


def _settings_json(attr: str) -> str | None:
    """A founder's file the settings loaded (`commission`, `provider_costs`) as the JSON its SQL reads, or None."""
    from ops.core.settings import get_settings

    c = getattr(get_settings(), attr)
    return c.to_json() if c is not None else None


def _founder_file_json(v: Any, load: Callable[[Path], Any]) -> str | None:
    """A founder's file for SQL: the loaded object, the path of a file (read with `load`), or its JSON;
    empty or 'none' is explicitly none (NULL whatever the settings say)."""
    if hasattr(v, "to_json"):
        return v.to_json()
    text = str(v).strip()
    if text.lower() in ("", "none"):
        return None
    if text.startswith("{"):
        import json

        json.loads(text)
        return text
    return load(Path(text)).to_json()


def _parse_commission(v: Any) -> str | None:
    """A commission for SQL (ops/core/commission.py); none: proceeds NULL."""
    from ops.core import commission

    return _founder_file_json(v, commission.load)


# `-- :param costs costs = PROVIDER_COSTS`: the founder's provider price list (OPSBENCH_PROVIDER_COSTS) as
# the JSON economics.sql reads; NULL when none is configured, and costs and margins are NULL ("provider costs
# not configured"), never a pretended cost of zero.
PROVIDER_COSTS_DEFAULT = "PROVIDER_COSTS"


# a parameter default that names a founder's file: the setting that points at it, and the Settings attribute
# holding it loaded (jobs/reconcile.py calls a check that needs an unset one "not configured")
SETTINGS_DEFAULTS = {COMMISSION_DEFAULT: ("OPSBENCH_COMMISSION", "commission"),
                     PROVIDER_COSTS_DEFAULT: ("OPSBENCH_PROVIDER_COSTS", "provider_costs")}


def _parse_costs(v: Any) -> str | None:
    """Provider costs for SQL (ops/core/costs.py); none: costs NULL."""
    from ops.core import costs

    return _founder_file_json(v, costs.load)


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
    "costs": (_parse_costs, "a provider costs file (TOML, see ops/core/costs.py)"),
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


# An analytics engine an opsbench runtime made (ops/data/runtime.py) carries the series read path
# (ops/data/series.py `Reader`) under this attribute: reader(query, values) -> DataFrame, or None
# for a query that is not a series. The loader knows nothing of rollups; nothing is registered here.
SERIES_READER = "opsbench_series_reader"


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
            elif p.default in SETTINGS_DEFAULTS:
                bound[p.name] = _settings_json(SETTINGS_DEFAULTS[p.default][1])
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
        analytics engine opsbench made (`ops.data.db.analytics()`, a notebook's
        `nb.connect()`, a job's context) is read through ops/data/series.py, the one
        read path: the closed days the state store's rollups hold for this
        backend from them, the rest from the raw tables, with the same numbers.
        Through a Connection, or any other engine, and with `raw()`, it reads
        the raw tables.
        """
        bound = self.bind(**values)
        reader = getattr(conn, SERIES_READER, None) if isinstance(conn, sa.Engine) else None
        if reader is not None:
            df = reader(self, bound)
            if df is not None:
                return df
        return self._frame_of(conn, bound)

    def raw(self, conn, **values: Any) -> pd.DataFrame:
        """The query on the raw tables, never through the rollups: the reference every rollup reader equals."""
        return self._frame_of(conn, self.bind(**values))

    def _frame_of(self, conn, bound: dict[str, Any]) -> pd.DataFrame:
        served = _serving.get()
        if served is not None:
            key = served.key(self, bound)
            if key is not None and key in served.answers:
                return served.answers[key].copy()
            served.asked.append((self, dict(bound)))
        with connection(conn) as c:
            return self._once_more_on_recovery_conflict(c, lambda: _frame(c.execute(self.statement, bound)))

    def over(self, conn, moments: list[dt.datetime], **values: Any) -> dict[dt.datetime, pd.DataFrame]:
        """The query at each of `moments` (its `now` parameter), in one statement: {moment: its rows},
        each frame as a call with that `now` returns it."""
        if self.param("now") is None:
            raise QueryError(f"{self.qualified_name}: has no 'now' parameter to run over moments")
        bound = {k: v for k, v in self.bind(now=moments[0], **values).items() if k != "now"}
        inner = _NOW.sub("opsbench_moments.now", self.sql)
        sql = ("SELECT opsbench_moments.now AS opsbench_at, q.* FROM unnest(CAST(:opsbench_moments AS timestamptz[]))"
               " WITH ORDINALITY AS opsbench_moments(now, i)\nCROSS JOIN LATERAL (\n"
               f"SELECT x.*, row_number() OVER () AS opsbench_row FROM (\n{inner}\n) AS x\n) AS q\n"
               "ORDER BY opsbench_moments.i, q.opsbench_row")
        with connection(conn) as c:
            result = self._once_more_on_recovery_conflict(
                c, lambda: c.execute(sa.text(sql), {**bound, "opsbench_moments": list(moments)}))
            description = (getattr(result.cursor, "description", None) or ())[1:-1]
            columns = list(result.keys())[1:-1]
            by_moment: dict[dt.datetime, list[tuple]] = {m: [] for m in moments}
            for r in result:
                by_moment[r[0]].append(tuple(r)[1:-1])
        return {m: _frame_of_rows(description, columns, rows) for m, rows in by_moment.items()}

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
    description = getattr(result.cursor, "description", None) or ()   # read before the rows close the cursor
    return _frame_of_rows(description, list(result.keys()), [tuple(r) for r in result.fetchall()])


def _frame_of_rows(description, columns: list[str], rows: list[tuple]) -> pd.DataFrame:
    # pandas is imported here, not at the top: `opsbench query --list` and the CLI's start need no pandas
    import pandas as pd

    float_cols = [d.name for d in description if getattr(d, "type_code", None) in _FLOAT_OIDS]
    # timestamptz columns are datetime64[UTC] even when every value is NULL, so
    # `resolved_at - fired_at` works on a window where nothing resolved yet
    tstz_cols = [d.name for d in description if getattr(d, "type_code", None) == _TIMESTAMPTZ_OID]
    df = pd.DataFrame.from_records(rows, columns=columns)
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


# -- answering one query at many moments (the backtest) ---------------------------------------
#
# A backtest asks the same queries at thousands of moments (`now` = each step). `over` runs a
# query for all of them in one statement (the query's own SQL, `now` taken from a list of
# moments); `serving` then answers the per-moment calls the checks make from those rows, so the
# checks' code and SQL run unchanged and the answers are the same by construction.

class Served:
    """Answers by (query, bound parameters), and what was asked that had no answer."""

    def __init__(self) -> None:
        self.answers: dict[tuple, pd.DataFrame] = {}
        self.asked: list[tuple[NamedQuery, dict[str, Any]]] = []

    def key(self, query: NamedQuery, bound: dict[str, Any]) -> tuple | None:
        try:
            k = (query.qualified_name, tuple(sorted(bound.items())))
            hash(k)
            return k
        except TypeError:
            return None


_serving: ContextVar[Served | None] = ContextVar("opsbench_served_answers", default=None)


@contextmanager
def serving(served: Served) -> Iterator[Served]:
    """Within this block, a query whose answer `served` holds is answered from it (a copy)."""
    token = _serving.set(served)
    try:
        yield served
    finally:
        _serving.reset(token)


_NOW = re.compile(r"(?<!:):now\b")


def _quiet_comment(line: str) -> str:
    """Escape colons in a whole-line `--` comment.

    sqlalchemy.text() does not know SQL comments: `-- :param start date` would
    otherwise become a required bind parameter named `param`.
    """
    return line.replace(":", "\\:")


# Shared SQL definitions (queries/shared/NAME.sql): a metric's rule written once and pasted by the loader
# wherever a query's body has a line `-- include: NAME` (`-- include: NAME,` when another CTE follows), so a
# raw series and its rollup extraction, or two queries showing one statistic, cannot drift apart. A shared
# file may include another. It may name constants in its header (`-- const: NAME = NUMBER`), written
# `{{NAME}}` in its SQL; Python reads the same number with `constant(NAME)`. The text is pasted, not created
# in the database: the founder's analytics role may not CREATE a function, and state queries use it too.
SHARED_DIR = QUERIES_DIR / "shared"
_INCLUDE = re.compile(r"^\s*--\s*include:\s*(?P<name>(?:checks/)?[a-z_][a-z0-9_]*)\s*(?P<comma>,?)\s*$")
_CONST = re.compile(r"^--\s*const:\s*(?P<name>[a-z_][a-z0-9_]*)\s*=\s*(?P<value>[-+0-9.eE]+)\s*$")


@cache
def _fragment(name: str, _seen: tuple[str, ...] = ()) -> tuple[tuple[str, ...], dict[str, str]]:
    """(the shared file's SQL lines, its includes pasted and its constants filled in; its constants).

    `checks/NAME` is a shipped check's statement (queries/checks/NAME.sql, header left out): the one
    definition of an invariant that a metric rule also watches live."""
    path = QUERIES_DIR / f"{name}.sql" if name.startswith("checks/") else SHARED_DIR / f"{name}.sql"
    if not path.is_file():
        raise ValueError(f"include: no shared SQL {name!r} (expected {path})")
    if name in _seen:
        raise ValueError(f"include: shared/{name}.sql includes itself ({' -> '.join(_seen + (name,))})")
    lines = path.read_text(encoding="utf-8").splitlines()
    consts = {m["name"]: m["value"] for m in map(_CONST.match, (ln.strip() for ln in lines)) if m}
    # the header is for the reader of the shared file; the pasted SQL names where it came from
    body = list(itertools.dropwhile(
        lambda ln: not _INCLUDE.match(ln) and (not ln.strip() or ln.strip().startswith("--")), lines))
    out: list[str] = [f"-- {path.relative_to(QUERIES_DIR).as_posix()}"]
    for line in _with_includes(body, _seen + (name,)):
        for key, value in consts.items():
            line = line.replace("{{" + key + "}}", value)
        if "{{" in line and not line.strip().startswith("--"):
            raise ValueError(f"shared/{name}.sql: unknown constant in {line.strip()!r}")
        out.append(line)
    while out and not out[-1].strip():
        out.pop()
    if out:
        out[-1] = out[-1].rstrip().rstrip(";")   # a statement pasted into another
    return tuple(out), consts


def constant(name: str) -> float:
    """A constant a shared SQL definition declares (`-- const: NAME = NUMBER`), for Python's copy of a rule."""
    for path in sorted(SHARED_DIR.glob("*.sql")):
        consts = _fragment(path.stem)[1]
        if name in consts:
            return float(consts[name])
    raise KeyError(f"no shared SQL declares the constant {name!r}")


def _with_includes(lines: list[str], _seen: tuple[str, ...] = ()) -> list[str]:
    out: list[str] = []
    for line in lines:
        m = _INCLUDE.match(line)
        if not m:
            out.append(line)
            continue
        pasted = list(_fragment(m["name"], _seen)[0])
        if m["comma"]:
            last = max(i for i, ln in enumerate(pasted) if ln.strip() and not ln.strip().startswith("--"))
            pasted[last] += ","
        out.extend(pasted)
    return out


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

    for line in _with_includes(path.read_text(encoding="utf-8").splitlines()):
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


def _path_of(subject: str) -> Path | None:
    """The file of a subject: public `queries/<subject>.sql`, else internal `queries/internal/<subject>.sql`."""
    for root in (QUERIES_DIR, INTERNAL_DIR):
        path = root / f"{subject}.sql"
        if path.is_file():
            return path
    return None


@cache
def load(subject: str) -> Subject:
    """Load a subject's file (subject may contain a folder: `state/outbox`), public or internal."""
    path = _path_of(subject)
    if path is None or subject.startswith("internal/"):
        raise QueryError(f"unknown query subject {subject!r}")
    own = parse_sql_file(path, subject)
    if subject == CHECKS_SUBJECT:
        # the shipped checks (queries/checks/*.sql) are this subject's queries too, before its own
        from queries import checkfile

        checks = {c.name: NamedQuery(subject, c.name, c.description, c.params, c.sql) for c in checkfile.shipped()}
        clash = sorted(set(checks) & set(own))
        if clash:
            raise ValueError(f"{path.name}: query {clash[0]!r} is also a check file")
        own = {**checks, **own}
    return Subject(subject, own)


def subjects(internal: bool = False) -> list[str]:
    """The founder's subjects (the top-level files of queries/); with internal, opsbench's own top-level ones too."""
    public = {p.stem for p in QUERIES_DIR.glob("*.sql") if p.stem not in _NOT_SUBJECTS}
    own = {p.stem for p in INTERNAL_DIR.glob("*.sql")} if internal else set()
    return sorted(public | own)


def internal_subjects() -> list[str]:
    """opsbench's own top-level subjects (queries/internal/*.sql): runnable by name, never listed."""
    return sorted(p.stem for p in INTERNAL_DIR.glob("*.sql"))


def all_queries(internal: bool = False) -> list[NamedQuery]:
    """Every query of the founder's subjects (what `opsbench query --list` shows); with internal, of
    opsbench's own top-level subjects too (the index doctor and the bench time every query)."""
    return [q for s in subjects(internal) for q in load(s).queries.values()]


def get(qualified: str) -> NamedQuery:
    """`revenue.daily` -> the NamedQuery (an internal one too, by its name: `rollups.dau_days`)."""
    subject, _, name = qualified.partition(".")
    if not name:
        raise QueryError(f"unknown query {qualified!r}: use SUBJECT.NAME, see `opsbench query --list`")
    if subject not in subjects(internal=True):
        raise QueryError(f"unknown query {qualified!r}: no subject {subject!r} (have: {', '.join(subjects())})")
    q = load(subject).queries.get(name)
    if q is None:
        raise QueryError(f"unknown query {qualified!r}: see `opsbench query --list`")
    return q


def script(relative: str) -> str:
    """The text of a whole SQL file (DDL, generator) under queries/, else under queries/internal/."""
    path = QUERIES_DIR / relative
    if not path.is_file():
        path = INTERNAL_DIR / relative
    return path.read_text(encoding="utf-8")

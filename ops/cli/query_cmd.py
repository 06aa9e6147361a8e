"""`opsbench query --list` and `opsbench query NAME -p key=value ... --format ...`."""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
from decimal import Decimal
from enum import Enum

import typer

from ops.cli import fail
from ops.core.redact import redact


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def _parse_params(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"parameter {pair!r}: expected key=value")
        out[key.strip()] = value
    return out


# PostgreSQL type OIDs, for aligning and rounding by column type rather than by value
_INT_OIDS = {20, 21, 23, 26}  # int8, int2, int4, oid
_FLOAT_OIDS = {700, 701}  # float4, float8
_NUMERIC_OID = 1700
_UUID_OID = 2950
TABLE_LIMIT = 50


def _jsonable(v):
    """A JSON value for one raw database value: None stays null, whole numbers stay whole."""
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, (dt.date, dt.datetime, dt.time)):
        return v.isoformat()
    if isinstance(v, Decimal):
        if not v.is_finite():
            return None
        if v == v.to_integral_value() and v.as_tuple().exponent >= 0:
            return int(v)
        return float(v)
    if isinstance(v, float):
        return None if v != v or v in (float("inf"), float("-inf")) else v
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, (int, str, list, dict)):
        return v
    return str(v)


def _decimals(values: list) -> int:
    """Decimals for a fractional column, one for the whole column: 4 for ratios below 1, else 2."""
    if values and all(isinstance(v, Decimal) and v.is_finite() and v.as_tuple().exponent >= 0
                      for v in values if v is not None):
        return 0  # a numeric column of whole values (sum of integers): printed whole
    finite = [abs(float(v)) for v in values if v is not None and float(v) == float(v)]
    return 4 if finite and max(finite) < 1 else 2


def _cell(v, oid, decimals: int = 2) -> str:
    """One table cell: numbers rounded by the column's type, everything else whole."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if oid in _FLOAT_OIDS or (oid == _NUMERIC_OID and isinstance(v, Decimal)):
        f = float(v)
        if f != f:
            return ""
        return f"{f:.{decimals}f}"
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ", timespec="seconds")
    if isinstance(v, dt.timedelta):
        return str(v)
    return str(v)


def _fetch(q, engine, values: dict, limit: int | None):
    """(columns, type OIDs, the first `limit` rows, how many rows there were) through a server-side cursor."""
    from queries.loader import connection

    bound = q.bind(**values)
    with connection(engine) as c:
        result = c.execution_options(stream_results=True, yield_per=1000).execute(q.statement, bound)
        cols = list(result.keys())
        oids = [getattr(d, "type_code", None) for d in (result.cursor.description or ())]
        kept: list[tuple] = []
        total = 0
        for part in result.partitions(1000):
            for r in part:
                total += 1
                if limit is None or len(kept) < limit:
                    kept.append(tuple(r))
    return cols, oids, kept, total


def _param_summary(p) -> str:
    return f"{p.name}:{p.type}" if p.required else f"[{p.name}:{p.type}={p.default}]"


def list_queries(name: str | None = None) -> None:
    """All queries (one line each), or one query's parameters with their docs."""
    # names and parameters whole (they are typed); descriptions wrap, or are left out on a narrow terminal
    import queries
    from ops.cli.tables import Col, print_table

    if name:
        q = queries.get(name)
        import textwrap

        from ops.cli.tables import UNLIMITED, console_width

        width = console_width()
        head = f"{q.qualified_name}: {q.description}"
        typer.echo(head if width >= UNLIMITED else "\n".join(textwrap.wrap(head, width, break_on_hyphens=False, break_long_words=False)))
        print_table([Col("parameter", "name", 0), Col("type", "fixed", 1), Col("default", "fixed", 2),
                     Col("description", "text", 3)],
                    [[p.name, p.type, p.default or "(required)", p.doc] for p in q.params])
        return
    print_table([Col("query", "name", 0), Col("parameters", "text", 2), Col("description", "text", 1)],
                [[q.qualified_name, " ".join(_param_summary(p) for p in q.params), q.description]
                 for q in queries.all_queries()])


def query(
    name: str = typer.Argument(None, help="SUBJECT.NAME, e.g. revenue.daily"),
    param: list[str] = typer.Option([], "--param", "-p", help="key=value, repeatable"),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
    limit: int = typer.Option(None, "--limit", "-n", min=0,
                              help=f"rows to show; default {TABLE_LIMIT} for table, all for csv/json; 0 = all"),
    list_: bool = typer.Option(False, "--list", help="list named queries; with NAME, that query's parameters"),
    raw: bool = typer.Option(False, "--raw", help="daily series: read only the raw tables, not the rollups"),
) -> None:
    """Run a named query against the analytics (read-only) connection.

    The daily series (revenue.daily, activity.daily, errors.daily, errors.durations,
    errors.by_code, activity.summary) read the closed days the state store's rollups hold
    for this backend from the rollups, the rest from the raw tables (same numbers); --raw
    reads only the raw tables.
    """
    import queries

    if list_:
        list_queries(name)
        return
    import sqlalchemy

    from ops.core.settings import get_settings
    from ops.data import db

    if not name:
        fail("missing query name: use SUBJECT.NAME or --list")
    q = queries.get(name)
    values = _parse_params(param)
    if q.param("tz") is not None and "tz" not in values:
        values["tz"] = get_settings().report_tz
    bound = q.bind(**values)  # validate before connecting
    if limit is None:
        limit = TABLE_LIMIT if fmt is Format.table else 0
    try:
        engine = db.analytics()
        if q.param("costs") is not None and bound.get("costs") is not None:
            _check_cost_models(engine, values.get("costs"))
        rolled = None if raw else _run_rolled(q, engine, values, fmt, limit or None)
        footer = rolled.footer if rolled else _run(q, engine, values, fmt, limit or None)
    except sqlalchemy.exc.DBAPIError as e:
        # the server said no (unreachable, timeout, permission): one line, not a traceback
        from ops.cli import _database_error

        reason = _database_error(e) or f"database error: {type(e).__name__}"
        typer.echo(f"opsbench: error: {name}: {redact(reason)}", err=True)
        raise typer.Exit(1) from None
    notes = [footer] if footer else []
    if q.param("commission") is not None and bound.get("commission") is None:
        # proceeds are NULL, never net at a pretended 0 % commission: say why, off the data stream
        notes.append("proceeds not configured (OPSBENCH_COMMISSION)")  # short: fits 80 columns with the count
    if q.param("costs") is not None and bound.get("costs") is None:
        notes.append("provider costs not configured (OPSBENCH_PROVIDER_COSTS)")  # costs and margins are blank
    if notes:  # one line on stderr, whatever it says
        typer.echo(" · ".join(notes), err=True)


def _check_cost_models(engine, given: str | None) -> None:
    """A costs file naming a model the backend does not have would leave that model unpriced: one line, exit 2."""
    from pathlib import Path

    import queries
    from ops.core import costs
    from ops.core.settings import get_settings

    if given is not None and not str(given).strip().startswith("{") and str(given).strip().lower() != "none":
        c = costs.load(Path(str(given).strip()))
    else:
        c = get_settings().provider_costs
    if c is None:
        return
    known = queries.economics.models(engine)
    problem = costs.unknown_models(c, set(zip(known["model"], known["provider"])))
    if problem:
        fail(f"OPSBENCH_PROVIDER_COSTS: {problem}" if given is None else problem)


class _Rolled:
    """A series printed from the rollups, and the line it leaves for stderr (None: nothing to say)."""

    def __init__(self, footer: str | None):
        self.footer = footer


def _run_rolled(q, engine, values: dict, fmt: Format, limit: int | None) -> _Rolled | None:
    """A daily series through the rollups (ops/data/series.py) when they cover part of its window.

    Printed like the raw query's rows (its column types, from a LIMIT 0 run), so
    the output does not depend on where a day came from. None: not covered, read raw.
    """
    from ops.data import series
    from queries.loader import connection

    if q.qualified_name not in series.SERIES:
        return None
    bound = q.bind(**values)
    state = series.covered(engine, q.qualified_name, bound)
    if state is None:
        return None
    df = series.read(engine, q.qualified_name, bound, state=state)
    with connection(engine) as c:
        import sqlalchemy as sa

        result = c.execute(sa.text(f"SELECT * FROM (\n{q.sql}\n) AS q LIMIT 0"), bound)
        oids = [getattr(d, "type_code", None) for d in (result.cursor.description or ())]
    cols = [str(c) for c in df.columns]
    rows = [tuple(_as_column_type(_plain(v), oid) for v, oid in zip(r, oids))
            for r in df.astype(object).itertuples(index=False)]
    shown = rows if limit is None else rows[:limit]
    if fmt is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(cols)
        writer.writerows(tuple("" if v is None else v for v in r) for r in shown)
    elif fmt is Format.json:
        typer.echo(json.dumps([{k: _jsonable(v) for k, v in zip(cols, row)} for row in shown], indent=2))
        if len(rows) > len(shown):
            return _Rolled(f"({len(rows) - len(shown)} more rows not shown; --limit 0 for all)")
    else:
        return _Rolled(_print_table(cols, oids, shown, len(rows)))
    return _Rolled(None)


def _as_column_type(v, oid):
    """A frame value as the database returns it for that column type (numeric as Decimal, whole when whole)."""
    if v is None:
        return None
    if oid == _NUMERIC_OID and isinstance(v, float):
        return Decimal(int(v)) if v.is_integer() else Decimal(repr(v))
    if hasattr(v, "to_pydatetime"):
        return v.to_pydatetime()
    return v


def _run(q, engine, values: dict, fmt: Format, limit: int | None) -> str | None:
    """Print the result on stdout; return the line for stderr (rows left out, the row count), if any."""
    if fmt is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        header_written = False
        shown = 0
        for cols, rows in q.stream(engine, **values):
            if not header_written:
                writer.writerow(cols)
                header_written = True
            if limit is not None:
                rows = rows[: max(0, limit - shown)]
            writer.writerows(rows)
            shown += len(rows)
        if not header_written:
            with engine.connect() as c:
                writer.writerow(list(q.execute(c, **values).keys()))
        return None
    cols, oids, rows, total = _fetch(q, engine, values, limit)
    if fmt is Format.json:
        records = [{k: _jsonable(v) for k, v in zip(cols, row)} for row in rows]
        typer.echo(json.dumps(records, indent=2))
        return f"({total - len(rows)} more rows not shown; --limit 0 for all)" if total > len(rows) else None
    return _print_table(cols, oids, rows, total)


def _print_table(cols: list[str], oids: list, rows: list[tuple], total: int) -> str | None:
    """A result on the terminal: numbers right-aligned and whole, ids and times whole, long text wrapped;
    the rightmost columns left out (and named) when they cannot all fit. Piped: every column, whole lines."""
    from rich.console import Console

    from ops.cli.tables import Col, print_table

    tty = sys.stdout.isatty()
    numeric = {_NUMERIC_OID} | _INT_OIDS | _FLOAT_OIDS
    places = [_decimals([r[i] for r in rows]) if oid in _FLOAT_OIDS or oid == _NUMERIC_OID else 2
              for i, oid in enumerate(oids)]
    cells = [[_cell(v, oid, d) for v, oid, d in zip(row, oids, places)] for row in rows]
    spec = []
    for i, (col, oid) in enumerate(zip(cols, oids)):
        longest = max([0] + [len(r[i]) for r in cells])
        kind = ("number" if oid in numeric else
                "fixed" if oid in (_UUID_OID, 1082, 1083, 1114, 1184, 1186, 16) or longest <= 32 else "text")
        # the first column names the row (a day, a code, a user): never left out; then left to right
        spec.append(Col(str(col), "name" if i == 0 else kind, 0 if i == 0 else i))
    rows_word = "row" if total == 1 else "rows"
    left_out = total - len(rows)
    footer = f"({total} {rows_word}" + (f", {left_out} not shown; --limit 0 for all)" if left_out else ")")
    if tty and len(rows) + 2 > Console().size.height:
        import os

        os.environ.setdefault("LESS", "-FRSX")  # colours, no wrapping, quit when it fits one screen
        console = Console()
        with console.pager(styles=True):
            print_table(spec, cells, console=console)
            console.print(footer, soft_wrap=True)
        return None
    print_table(spec, cells)
    return footer  # the caller prints it on stderr, with any note, as one line


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and v != v) or type(v).__name__ in ("NaTType", "NAType")


def _plain(v):
    """A frame's cell as the value the database would have given: numpy scalars unwrapped, NaN/NaT as None."""
    if _missing(v):
        return None
    item = getattr(v, "item", None)
    if item is not None and type(v).__module__ == "numpy":
        return item()
    return v


def _frame_oids(df) -> list:
    """Type OIDs for a frame's columns (from their dtypes), so a frame prints like a query result."""
    out = []
    for c in df.columns:
        kind = df[c].dtype.kind
        out.append({"i": 20, "u": 20, "f": 701, "b": 16, "M": 1184}.get(kind))
    return out


def print_frame(df, fmt: Format) -> None:
    """A result frame as a table (terminal), JSON or CSV on stdout; the row count on stderr for a table."""
    if fmt is Format.csv:
        df.to_csv(sys.stdout, index=False, lineterminator="\n")
        return
    cols = [str(c) for c in df.columns]
    rows = [tuple(_plain(v) for v in r) for r in df.astype(object).itertuples(index=False)]
    if fmt is Format.json:
        typer.echo(json.dumps([{k: _jsonable(v) for k, v in zip(cols, row)} for row in rows], indent=2))
        return
    footer = _print_table(cols, _frame_oids(df), rows, len(rows))
    if footer:
        typer.echo(footer, err=True)


def register(app: typer.Typer) -> None:
    app.command("query")(query)

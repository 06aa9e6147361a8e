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


def _jsonable(v):
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if v is not None and not isinstance(v, (int, float, str, bool, list, dict)):
        return str(v)
    if isinstance(v, float) and v != v:  # NaN
        return None
    return v


def _param_summary(p) -> str:
    return f"{p.name}:{p.type}" if p.required else f"[{p.name}:{p.type}={p.default}]"


def list_queries(name: str | None = None) -> None:
    """All queries (one line each), or one query's parameters with their docs."""
    # One line per query: on a terminal long descriptions end in an ellipsis
    # (`--list NAME` shows one whole); piped, lines are as long as they need.
    import sys

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    import queries

    console = Console() if sys.stdout.isatty() else Console(width=10_000)
    if name:
        q = queries.get(name)
        console.print(escape(f"{q.qualified_name}: {q.description}"))
        table = Table("parameter", "type", "default", "description", box=None, pad_edge=False)
        for p in q.params:
            table.add_row(*(escape(x) for x in (p.name, p.type, p.default or "(required)", p.doc)))
        console.print(table)
        return
    # escape(): "[tz:tz=UTC]" is rich markup syntax and would vanish unescaped
    table = Table(box=None, pad_edge=False)
    table.add_column("query", no_wrap=True)
    table.add_column("parameters", no_wrap=True)
    table.add_column("description", no_wrap=True, overflow="ellipsis")
    for q in queries.all_queries():
        params = " ".join(_param_summary(p) for p in q.params)
        table.add_row(escape(q.qualified_name), escape(params), escape(q.description))
    console.print(table)


def query(
    name: str = typer.Argument(None, help="SUBJECT.NAME, e.g. revenue.daily"),
    param: list[str] = typer.Option([], "--param", "-p", help="key=value, repeatable"),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
    list_: bool = typer.Option(False, "--list", help="list named queries; with NAME, that query's parameters"),
) -> None:
    """Run a named query against the analytics (read-only) connection."""
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
    q.bind(**values)  # validate before connecting
    try:
        _run(q, db.analytics(), values, fmt)
    except sqlalchemy.exc.DBAPIError as e:
        # the server said no (unreachable, timeout, permission): one line, not a traceback
        from ops.cli import _database_error

        reason = _database_error(e) or f"database error: {type(e).__name__}"
        typer.echo(f"opsbench: error: {name}: {redact(reason)}", err=True)
        raise typer.Exit(1) from None


def _run(q, engine, values: dict, fmt: Format) -> None:
    if fmt is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        header_written = False
        for cols, rows in q.stream(engine, **values):
            if not header_written:
                writer.writerow(cols)
                header_written = True
            writer.writerows(rows)
        if not header_written:
            with engine.connect() as c:
                writer.writerow(list(q.execute(c, **values).keys()))
        return
    print_frame(q(engine, **values), fmt)


def print_frame(df, fmt: Format) -> None:
    """A result frame as a table (terminal), JSON or CSV on stdout; the row count on stderr for a table."""
    if fmt is Format.csv:
        df.to_csv(sys.stdout, index=False, lineterminator="\n")
        return
    if fmt is Format.json:
        records = [{k: _jsonable(v) for k, v in row.items()} for row in df.astype(object).to_dict("records")]
        typer.echo(json.dumps(records, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(*[escape(str(c)) for c in df.columns], box=None)
    for row in df.astype(object).itertuples(index=False):
        table.add_row(*["" if v is None or (isinstance(v, float) and v != v) else escape(str(_jsonable(v)))
                        for v in row])
    Console(width=max(120, 14 * len(df.columns))).print(table)
    typer.echo(f"({len(df)} rows)", err=True)


def register(app: typer.Typer) -> None:
    app.command("query")(query)

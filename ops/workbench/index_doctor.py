"""`opsbench doctor --indexes`: which index would stop a named query from reading a large table whole.

For every named query, the planner's plan is asked for (`EXPLAIN`, never run)
with sample parameters (the last 30 days, the last hour). Every sequential
scan of a large table (at least `min_rows` rows) that keeps a small share of
it (at most `max_share`, the planner's estimate) is a candidate: an index on a
filtered column would serve it. It is reported unless the table already has a
usable index leading with such a column (then the planner chose the scan on
purpose), as a `CREATE INDEX CONCURRENTLY` statement: the one declared in
queries/schema.sql when there is one (name, columns and partial predicate as
the queries expect), otherwise a plain single-column index.

A scan under a join (`NOT EXISTS`, a lookup by key) has no filter of its own:
its join keys are candidates too, but only indexes declared in schema.sql are
suggested for them (a hash join over a whole table is often the right plan).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterator

import sqlalchemy as sa

import queries
from ops.core.clock import utc_now
from queries.loader import NamedQuery, parse_sql_file

DEFAULT_MIN_ROWS = 10_000
DEFAULT_MAX_SHARE = 0.3
_SAMPLE_UUID = "00000000-0000-0000-0000-000000000001"
_DECLARED = re.compile(
    r"CREATE\s+INDEX\s+IF\s+NOT\s+EXISTS\s+(?P<name>\w+)\s+ON\s+(?P<table>\w+)\s*\((?P<cols>[^)]*)\)"
    r"(?P<rest>[^;]*);", re.IGNORECASE)
_COND_KEYS = ("Hash Cond", "Merge Cond", "Join Filter", "Index Cond")


@dataclass(frozen=True)
class DeclaredIndex:
    name: str
    table: str
    columns: tuple[str, ...]
    statement: str           # as in schema.sql, with CONCURRENTLY


@dataclass
class Suggestion:
    table: str
    table_rows: int
    columns: tuple[str, ...]         # filtered columns the index would serve
    statement: str
    queries: list[str] = field(default_factory=list)


@dataclass
class IndexReport:
    explained: int
    suggestions: list[Suggestion]
    failed: list[tuple[str, str]]    # (query, one-line reason)

    @property
    def all_clear(self) -> bool:
        return not self.suggestions


def _tools(name: str):
    return parse_sql_file(queries.loader.INTERNAL_DIR / "tools" / f"{name}.sql", f"tools/{name}")


def explain_sql(q: NamedQuery, analyze: bool = False) -> sa.TextClause:
    """The named query behind an EXPLAIN prefix from queries/internal/tools/explain.sql."""
    prefix = _tools("explain")["analyze" if analyze else "plan"].sql
    return sa.text(prefix + "\n" + q.sql)


def sample_params(q: NamedQuery, today: dt.date, now: dt.datetime | None = None) -> dict[str, Any]:
    """Parameters a founder would typically use: the last 30 days, the last hour, defaults otherwise."""
    now = now or dt.datetime.combine(today, dt.time(12), tzinfo=dt.timezone.utc)
    values: dict[str, Any] = {}
    for p in q.params:
        if p.type == "date":
            values[p.name] = today if p.name in ("end", "until", "day", "last_day") else today - dt.timedelta(days=29)
        elif p.type == "timestamptz":
            values[p.name] = now if p.name in ("until", "end", "at", "now") else now - dt.timedelta(hours=1)
        elif p.type == "uuid" and p.default is None:
            values[p.name] = _SAMPLE_UUID
        elif p.default is None:
            values[p.name] = {"int": 10, "float": 1.0, "text": "x", "bool": True, "tz": "UTC",
                              "interval": "1h"}.get(p.type, "x")
    return values


def declared_indexes() -> dict[str, list[DeclaredIndex]]:
    """The indexes queries/schema.sql declares, by table."""
    out: dict[str, list[DeclaredIndex]] = defaultdict(list)
    for m in _DECLARED.finditer(queries.script("schema.sql")):
        cols = tuple(c.strip().split()[0] for c in m["cols"].split(","))
        stmt = re.sub(r"\s+", " ", m.group(0).replace("CREATE INDEX IF NOT EXISTS",
                                                      "CREATE INDEX CONCURRENTLY IF NOT EXISTS", 1))
        out[m["table"]].append(DeclaredIndex(m["name"], m["table"], cols, stmt))
    return out


def _walk(node: dict, parent: dict | None = None) -> Iterator[tuple[dict, dict | None]]:
    yield node, parent
    for child in node.get("Plans", []):
        yield from _walk(child, node)


def _columns_in(text: str, alias: str | None, columns: set[str], qualified_only: bool = False) -> list[str]:
    found = []
    for col in sorted(columns):
        pattern = rf"\b{re.escape(alias)}\.{re.escape(col)}\b" if qualified_only and alias else \
            rf"(?<![\w.])(?:{re.escape(alias or '')}\.)?{re.escape(col)}\b(?!\s*\()"
        if re.search(pattern, text):
            found.append(col)
    return found


def check_indexes(engine: sa.Engine, *, today: dt.date | None = None, min_rows: int = DEFAULT_MIN_ROWS,
                  max_share: float = DEFAULT_MAX_SHARE, only: list[str] | None = None) -> IndexReport:
    """EXPLAIN every named query (or `only` these) and collect the indexes that would serve them."""
    today = today or utc_now().date()
    catalog = _tools("catalog")
    with engine.connect() as conn:
        rows = {r.table_name: int(r.est_rows) for r in catalog["table_rows"].execute(conn)}
        cols: dict[str, set[str]] = defaultdict(set)
        for r in catalog["table_columns"].execute(conn):
            cols[r.table_name].add(r.column_name)
        existing: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
        for r in catalog["table_indexes"].execute(conn):
            existing[r.table_name].append((r.leading_column, r.predicate))

    def served(table: str, filter_text: str, wanted: list[str]) -> bool:
        for lead, predicate in existing.get(table, []):
            if lead in wanted and (predicate is None or predicate in filter_text):
                return True
        return False

    declared = declared_indexes()
    found: dict[str, Suggestion] = {}
    failed: list[tuple[str, str]] = []
    targets = [queries.get(n) for n in only] if only else queries.all_queries(internal=True)
    explained = 0
    for q in targets:
        try:
            with engine.connect() as conn:
                raw = conn.execute(explain_sql(q), q.bind(**sample_params(q, today))).scalar_one()
        except Exception as e:  # a query that cannot be planned here is reported, not fatal
            reason = str(getattr(e, "orig", None) or e).strip().splitlines()
            failed.append((q.qualified_name, reason[0] if reason else type(e).__name__))
            continue
        explained += 1
        plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
        for node, parent in _walk(plan):
            if node.get("Node Type") != "Seq Scan":
                continue
            table, alias = node.get("Relation Name"), node.get("Alias")
            size = rows.get(table, 0)
            if table is None or size < min_rows:
                continue
            filter_text = node.get("Filter", "")
            wanted = _columns_in(filter_text, alias, cols[table]) if filter_text else []
            from_join = False
            if filter_text and node.get("Plan Rows", size) > max_share * max(size, 1):
                continue  # keeps most of the table: reading it whole is right
            if not wanted and parent is not None:
                cond = " ".join(str(parent.get(k, "")) for k in _COND_KEYS)
                wanted = _columns_in(cond, alias, cols[table], qualified_only=True)
                from_join = True
            if not wanted or served(table, filter_text, wanted):
                continue
            match = next((d for d in declared.get(table, []) if d.columns[0] in wanted), None)
            if match is None and from_join:
                continue
            statement = match.statement if match else \
                f"CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_{table}_{wanted[0]} ON {table} ({wanted[0]});"
            s = found.setdefault(statement, Suggestion(table, size, tuple(wanted), statement))
            if q.qualified_name not in s.queries:
                s.queries.append(q.qualified_name)
    return IndexReport(explained, sorted(found.values(), key=lambda s: (-s.table_rows, s.statement)), failed)

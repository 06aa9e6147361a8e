"""What the analytics (and maintenance) role can see of the backend's tables, known before any figure.

Row level security hides rows without an error: on Supabase every table has it, and a role
with no policy and no BYPASSRLS reads zero rows, so revenue is 0, reconciliation passes and
the digest says "All clear". `verdict()` reads the catalog once (queries/internal/tools/visibility.sql)
and `guard()` makes an engine refuse, in one line naming the table and the fix, while rows
are hidden: every query, notebook, report and job goes through an engine of the runtime,
so none of them can show a figure over hidden rows. The verdict is cached on the engine:
one catalog query per engine (per process and role).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

import queries
from ops.core.errors import OpsbenchError, UserError
from ops.core.redact import redact

# The backend tables the queries, checks and notebooks read (queries/*.sql, queries/checks/*.sql);
# tests/test_visibility_tables.py checks this list against the SQL.
ANALYTICS_TABLES = ("admin_actions", "error_log", "models", "products", "purchases", "quota_log",
                    "rate_limit_log", "users", "video_jobs")
# What cleanup deletes from and reads (jobs/cleanup.py).
MAINTENANCE_TABLES = ("error_log", "idempotency_keys", "rate_limit_log", "video_jobs")

TABLES = {"analytics": ANALYTICS_TABLES, "maintenance": MAINTENANCE_TABLES}

FIX = ("run deploy/roles.sql as postgres, which reads through views owned by a BYPASSRLS role "
       "(README: Supabase), or as the table owner {owner}: "
       "CREATE POLICY opsbench_read ON {table} FOR SELECT TO {role} USING (true)")


class HiddenRows(UserError):
    """Row level security hides rows of a table from the connected role: every figure would be wrong."""


class VisibilityUnknown(OpsbenchError):
    """The catalog check itself failed: nothing may say "all clear" on top of it."""


@dataclass(frozen=True)
class TableView:
    """One table the queries read, as the connected role sees it (one row of table_visibility)."""

    table: str
    exists: bool
    is_view: bool
    can_select: bool
    base_table: str | None
    owner: str | None
    rls: bool
    force_rls: bool
    reader: str | None
    reader_bypasses: bool
    reader_owns: bool
    reader_can_select: bool
    policies: tuple[str, ...]
    open_policy: bool
    sees_rows: bool | None
    estimated_rows: int

    @property
    def rls_applies(self) -> bool:
        """Row security filters what the reader gets: on, not bypassed, not the (unforced) owner."""
        return self.rls and not self.reader_bypasses and not (self.reader_owns and not self.force_rls)

    @property
    def hidden(self) -> bool:
        """Rows are (or may be) hidden: no policy lets the reader see every row, or the probe saw none
        of a table the planner says holds rows while row security is on."""
        if not self.exists or not self.can_select or self.base_table is None:
            return False
        if self.rls_applies and not self.open_policy:
            return True
        return self.rls and self.sees_rows is False and self.estimated_rows > 0

    def reason(self, role: str) -> str:
        """One line: what hides the rows, from whom, and the fix."""
        base = self.base_table or self.table
        how = (f"policies {', '.join(self.policies)} decide which rows it sees" if self.policies
               else "no policy applies to it")
        if self.sees_rows is False and self.estimated_rows > 0:
            how += f"; it sees none of ~{self.estimated_rows:,} rows"
        via = f" (through the view {self.table}, read as its owner {self.reader})" if self.is_view else ""
        fix = FIX.format(owner=self.owner or "?", table=base, role=self.reader or role)
        return f"row level security hides {self.table} from {role}{via}: {how}; {fix}"


@dataclass(frozen=True)
class Verdict:
    role: str                    # the connected role (current_user)
    tables: tuple[TableView, ...]

    @property
    def hidden(self) -> list[TableView]:
        return [t for t in self.tables if t.hidden]

    def refusal(self) -> str | None:
        """The one line a command prints instead of figures, None when every row is visible."""
        hidden = self.hidden
        if not hidden:
            return None
        first = hidden[0].reason(self.role)
        more = [t.table for t in hidden[1:]]
        return first + (f" (also {', '.join(dict.fromkeys(more))})" if more else "")


def _rows_to_verdict(role: str, rows: list[dict[str, Any]], seen: dict[str, bool]) -> Verdict:
    tables = tuple(TableView(
        table=r["table_name"], exists=bool(r["table_exists"]), is_view=bool(r["is_view"]),
        can_select=bool(r["can_select"]), base_table=r["base_table"], owner=r["owner"], rls=bool(r["rls"]),
        force_rls=bool(r["force_rls"]), reader=r["reader"], reader_bypasses=bool(r["reader_bypasses"]),
        reader_owns=bool(r["reader_owns"]), reader_can_select=bool(r["reader_can_select"]),
        policies=tuple(r["policies"] or ()), open_policy=bool(r["open_policy"]), sees_rows=seen.get(r["table_name"]),
        estimated_rows=int(r["estimated_rows"] if r["estimated_rows"] is not None else -1),
    ) for r in rows)
    return Verdict(role, tables)


def _fetch(cur, statement: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    cur.execute(statement, params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def read(dbapi_conn, dialect, tables: tuple[str, ...] = ANALYTICS_TABLES) -> Verdict:
    """The verdict for the role of a psycopg connection: the catalog query, then one probe statement
    (EXISTS on each table it may read). Leaves no transaction open."""
    from psycopg import sql as pgsql

    named = queries.load("tools/visibility")
    q = named.table_visibility
    compiled = q.statement.bindparams(**q.bind(tables=list(tables))).compile(dialect=dialect)
    cur = dbapi_conn.cursor()
    try:
        role = _fetch(cur, named.session_role.sql)[0]["usr"]
        rows = _fetch(cur, str(compiled), compiled.params)
        probes = {r["table_name"]: pgsql.SQL(named.probe.sql.strip()).format(
                      name=pgsql.Literal(r["table_name"]), relation=pgsql.Identifier(r["rel_schema"], r["rel_name"]))
                  for r in rows if r["can_select"] and r["reader_can_select"] and r["rel_name"]}
        seen = {}
        if probes:
            seen = {r["table_name"]: bool(r["sees_rows"])
                    for r in _fetch(cur, pgsql.SQL(" UNION ALL ").join(probes.values()).as_string(dbapi_conn))}
    finally:
        cur.close()
        dbapi_conn.rollback()  # the pool hands out the connection with no transaction open
    return _rows_to_verdict(role, rows, seen)


def verdict(conn: sa.Connection, tables: tuple[str, ...] = ANALYTICS_TABLES) -> Verdict:
    """`read` on an SQLAlchemy connection (doctor): rolls back whatever the connection had open."""
    conn.rollback()
    return read(conn.connection.dbapi_connection, conn.dialect, tables)


class _Guard:
    """The cached verdict of one engine: checked on its first connection, refused on every one after."""

    def __init__(self, engine: Engine, tables: tuple[str, ...]):
        self.engine = engine
        self.tables = tables
        self.result: Verdict | None = None
        self._lock = threading.Lock()

    def on_connect(self, dbapi_conn, _record) -> None:
        with self._lock:
            if self.result is None:
                try:
                    self.result = read(dbapi_conn, self.engine.dialect, self.tables)
                except Exception as e:
                    # a database that is down fails the connect itself; this is the check failing on a
                    # live connection (a view its owner may not read, say): an error, never all clear
                    first = (redact(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0]
                    _close(dbapi_conn)
                    raise VisibilityUnknown(f"cannot tell which rows of the backend's tables the connected "
                                            f"role sees: {first}") from None
            line = self.result.refusal()
        if line:
            _close(dbapi_conn)
            raise HiddenRows(line)


def _close(dbapi_conn) -> None:
    try:
        dbapi_conn.close()
    except Exception:  # noqa: BLE001 - closing a connection we refuse: nothing left to report
        pass


def guard(engine: Engine, role: str) -> Engine:
    """Make `engine` refuse (HiddenRows) while row security hides rows of the tables `role` reads."""
    tables = TABLES.get(role)
    if tables is None or getattr(engine, "_opsbench_visibility", None) is not None:
        return engine
    g = _Guard(engine, tables)
    sa.event.listen(engine, "connect", g.on_connect)
    engine._opsbench_visibility = g  # type: ignore[attr-defined]
    return engine


def cached(engine: Engine) -> Verdict | None:
    """The verdict an engine's guard holds (None before its first connection or without a guard)."""
    g = getattr(engine, "_opsbench_visibility", None)
    return g.result if g is not None else None

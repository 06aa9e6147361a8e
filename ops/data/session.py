"""Session settings that survive a pooler, and servers that refuse the `options` startup parameter.

opsbench used to set read-only and statement_timeout only through libpq's
`options` startup parameter. A pooler breaks that three ways: PgBouncer by
default refuses it ("unsupported startup parameter: options"); with
`ignore_startup_parameters = options` (and Supabase's pooler) it silently drops
it; and in transaction mode a client's transactions run on server sessions
other clients share. So:

- `options` is still sent (a direct server applies it to the whole session),
  but a server that refuses it is connected to without it: detected on the
  error and remembered per server/database/user for the life of the process.
- every transaction an engine begins first runs `tools/session.apply_local`
  (`set_config(..., is_local => true)`): read-only and the timeouts hold for
  that transaction on whatever server session the pooler gave it. Role-level
  defaults (`ALTER ROLE ... SET`, deploy/roles.sql) cover psql and anything
  else that connects as the role.
- psycopg never prepares statements (`prepare_threshold=None`, ops.data.db):
  behind a transaction pooler a statement prepared on one server session is
  unknown, or already known, on the next ("_pg3_0 already exists").
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

import queries

log = logging.getLogger("opsbench.db")

_refuse_options: set[tuple] = set()
_lock = threading.Lock()


def _server_key(cparams: dict[str, Any]) -> tuple:
    return (cparams.get("host"), cparams.get("port"), cparams.get("dbname"), cparams.get("user"))


def refuses_options(err: BaseException) -> bool:
    """Whether a connect error is a pooler refusing the `options` startup parameter."""
    text = str(err).lower()
    return "unsupported startup parameter" in text and "options" in text


def refused_options(url: sa.URL | str) -> bool:
    """Whether this process found that the server at `url` refuses `options` (doctor says so)."""
    u = sa.make_url(url)
    return (u.host, u.port, u.database, u.username) in _refuse_options


def connect_without_refused_options(engine: sa.Engine) -> None:
    """Connect without `options` to a server known to refuse it; learn that from the first refusal."""

    @event.listens_for(engine, "do_connect")
    def _connect(dialect, conn_rec, cargs, cparams):
        key = _server_key(cparams)
        if key in _refuse_options:
            cparams.pop("options", None)
        try:
            return dialect.connect(*cargs, **cparams)
        except dialect.loaded_dbapi.OperationalError as e:
            if "options" not in cparams or not refuses_options(e):
                raise
        with _lock:
            _refuse_options.add(key)
        log.info("the server at %s:%s refuses the options startup parameter (a pooler?): connecting without it; "
                 "each transaction sets its own read-only and timeouts", key[0], key[1])
        cparams.pop("options", None)
        return dialect.connect(*cargs, **cparams)


def set_local_each_transaction(engine: sa.Engine, *, statement_timeout_ms: int, lock_timeout_ms: int | None,
                               read_only: bool) -> None:
    """Run `apply_local` first in every transaction `engine` begins (not in autocommit, where there is none)."""
    q = queries.load("tools/session").apply_local
    compiled = q.statement.compile(dialect=engine.dialect)
    params = compiled.construct_params(q.bind(statement_timeout=str(statement_timeout_ms),
                                              lock_timeout=None if lock_timeout_ms is None else str(lock_timeout_ms),
                                              read_only=read_only))
    sql = compiled.string

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        # on the driver's connection: SQLAlchemy's own transaction is not in place yet during this event;
        # psycopg opens the transaction with this statement
        dbapi = conn.connection.driver_connection
        if dbapi.autocommit:
            return
        dbapi.execute(sql, params)


def set_on_connect(engine: sa.Engine, *, statement_timeout_ms: int) -> None:
    """Set the session's statement_timeout on each new connection (for autocommit connections, where
    `set_local_each_transaction` has no transaction to work in)."""
    q = queries.load("tools/session").apply_session
    compiled = q.statement.compile(dialect=engine.dialect)
    params = compiled.construct_params(q.bind(statement_timeout=str(statement_timeout_ms)))

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, record) -> None:
        autocommit = dbapi_conn.autocommit
        dbapi_conn.autocommit = True
        try:
            dbapi_conn.execute(compiled.string, params)
        finally:
            dbapi_conn.autocommit = autocommit


def effective(conn: sa.Connection) -> dict[str, str]:
    """The settings of a transaction on `conn` as the app runs it (call inside the transaction)."""
    return dict(queries.load("tools/session").effective.execute(conn).mappings().one())


def server_defaults(engine: sa.Engine) -> dict[str, str]:
    """The settings a session of this role gets from the server alone (role/database defaults, any
    `options` the server took), read in autocommit so no `apply_local` runs."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return dict(queries.load("tools/session").effective.execute(conn).mappings().one())


# -- does a client connection keep one server session? ------------------------------------

_PROBE_ROUNDS = 3


def session_problem(url: sa.URL | str) -> str | None:
    """None when a client connection to `url` keeps one server session across its transactions; else
    what was seen. Detected, not guessed from the port: connection A notes its server session, a second
    connection B holds a transaction open (and with it, behind a pooler, a server session), then A asks
    again. Directly or through a session pooler, B has a session of its own and A still has A's; through
    a transaction (or statement) pooler, B is handed the session A just gave back, or A gets another one.
    Connection errors on A are raised (the caller says the server is down, not that it pools)."""
    q = queries.load("state/daemon").server_session
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool, hide_parameters=True,
                           connect_args={"application_name": "opsbench-session-probe", "prepare_threshold": None,
                                         "connect_timeout": 10})
    connect_without_refused_options(eng)
    try:
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as a:
            for _ in range(_PROBE_ROUNDS):
                first = q.execute(a).one()
                try:
                    with eng.connect() as b:
                        other = q.execute(b).one()          # B's transaction stays open until rollback
                        again = q.execute(a).one()
                        b.rollback()
                except sa.exc.DBAPIError as e:
                    if a.closed or a.invalidated:
                        raise
                    first_line = (str(getattr(e, "orig", e)).strip().splitlines() or ["?"])[0]
                    return f"a second connection could not hold a transaction open ({first_line})"
                if other.pid == first.pid:
                    return (f"another connection was handed this connection's server session (pid {first.pid}) "
                            "between two of its transactions")
                if again.pid != first.pid or again.since != first.since:
                    return (f"two transactions of one connection ran on different server sessions "
                            f"(pid {first.pid}, then {again.pid})")
    finally:
        eng.dispose()
    return None


def needs_session_fix(name: str, masked_url: str, problem: str) -> str:
    """The one line refusing a state URL that does not keep a server session, with the fix."""
    return (f"{name} ({masked_url}) does not keep one server session: {problem}. The daemon's leader lock is "
            "a session advisory lock, which a transaction pooler (PgBouncer pool_mode=transaction, Supabase's "
            f"port 6543) cannot hold: point {name} at the direct connection or a session pooler "
            "(PgBouncer pool_mode=session; Supabase: the session pooler on port 5432)")

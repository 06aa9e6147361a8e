"""Doctor's checks for what a pooler or a replica changes (issue 23): the session settings the app's
transactions really run with, whether the state URL can hold the leader lock and who holds it, and
whether the analytics database is a standby and how far behind. Kept apart from doctor.py's
privilege checks; `run_checks` appends `pooler_checks`.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy.pool import NullPool

import queries
from ops.core.redact import redact
from ops.core.settings import Settings
from ops.workbench.doctor import CONNECT_TIMEOUT_S, Check, _connect_problem, _ident



def pooler_checks(settings: Settings, skip: set[str] = frozenset()) -> list[Check]:
    """`skip`: roles whose connection already failed (its line says why; no second line about it)."""
    out = []
    if "analytics" not in skip:
        out += [session_settings_check(settings), replica_check(settings)]
    if "state" not in skip:
        out.append(leader_lock_check(settings))
    return out


@contextmanager
def _engine(role: str, settings: Settings):
    """A short-lived engine of `role` for one doctor check, disposed however the check ends."""
    from ops.data import db

    engine = db.make_engine(role, settings, connect_args={"connect_timeout": CONNECT_TIMEOUT_S}, poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def session_settings_check(settings: Settings) -> Check:
    """The analytics transactions' read-only and statement_timeout as the app runs them, and where they come
    from: the server (role defaults, or `options` the server took) or only opsbench's per-transaction set."""
    from ops.data import db, session

    name = "session settings"
    try:
        with _engine("analytics", settings) as engine:
            with engine.begin() as conn:
                eff = session.effective(conn)
                user = str(queries.load("tools/doctor").session_role.execute(conn).scalar_one())
            server = session.server_defaults(engine)
            refused = session.refused_options(engine.url)
    except Exception as e:  # noqa: BLE001 - doctor never raises
        return Check(name, "fail", f"cannot read the analytics session's settings: {_connect_problem(e)}")
    want_ms = int(settings.statement_timeout_s * 1000)
    got = f"read-only {eff['read_only']}, statement_timeout {eff['statement_timeout']}"
    fix = (f"ALTER ROLE {_ident(user)} SET default_transaction_read_only = on; ALTER ROLE {_ident(user)} SET "
           f"statement_timeout = '{want_ms}ms' (deploy/roles.sql does)")
    if eff["read_only"] != "on" or eff["default_read_only"] != "on":
        return Check(name, "fail", f"the analytics transactions run with {got}: not read-only ({fix})")
    how = "startup options refused by the server (a pooler): connecting without them; " if refused else ""
    if server["default_read_only"] == "on" and server["statement_timeout"] not in ("0", "0ms"):
        return Check(name, "ok", f"{how}transactions run with {got}; the session's own defaults (role settings "
                                 "or startup options) hold them too")
    resolved = db.resolve("analytics", settings)
    if resolved.embedded:
        return Check(name, "ok", f"transactions run with {got} (embedded demo server)")
    return Check(name, "warn", f"{how}transactions run with {got}, set by opsbench in each transaction; the "
                               f"server's own default for {user} is read-only {server['default_read_only']}, "
                               f"statement_timeout {server['statement_timeout']}, so psql or another tool "
                               f"logging in as {user} may write or run unbounded ({fix})")


def replica_check(settings: Settings) -> Check:
    """A standby (pg_is_in_recovery) is fine for analytics: say so, with its replication lag."""
    from ops.data import replica

    name = "replica"
    try:
        with _engine("analytics", settings) as engine, engine.connect() as conn:
            row = replica.status(conn)
    except Exception as e:  # noqa: BLE001
        return Check(name, "fail", f"cannot tell whether the analytics database is a standby: {_connect_problem(e)}")
    if not row.standby:
        return Check(name, "ok", "the analytics database is a primary (no replication lag)")
    lag = float(row.lag_s or 0.0)
    if lag > replica.LAG_NOTE_S:   # reports state the lag past the same line
        return Check(name, "warn", f"the analytics database is a standby {lag / 60:.0f} min behind its primary: "
                                   "figures miss the latest rows (reports say so); check the replication "
                                   "(pg_stat_replication on the primary) or point DATABASE_URL at the primary")
    return Check(name, "ok", f"the analytics database is a standby (read replica), {lag:.0f} s behind its primary; "
                             "a query cancelled by a recovery conflict is retried once")


def leader_lock_check(settings: Settings) -> Check:
    """Whether OPSBENCH_STATE_URL keeps one server session (the leader lock needs one), and who holds the lock."""
    from ops.daemon.leader import holder
    from ops.data import db, session

    name = "leader lock"
    try:
        resolved = db.resolve("state", settings)
    except Exception as e:  # noqa: BLE001
        return Check(name, "fail", f"cannot start the embedded database: {redact(e)}")
    try:
        problem = session.session_problem(db.sqlalchemy_url(resolved.dsn))
        if problem is not None:
            return Check(name, "fail", session.needs_session_fix("OPSBENCH_STATE_URL", resolved.masked(), problem))
        with _engine("state", settings) as engine, engine.connect() as conn:
            who = holder(conn)
    except Exception as e:  # noqa: BLE001
        return Check(name, "fail", f"cannot check the leader lock on {resolved.masked()}: {_connect_problem(e)}")
    if who is None:
        return Check(name, "ok", "the state connection keeps its server session; nobody holds the leader lock now")
    return Check(name, "ok", f"the state connection keeps its server session; the leader lock is held by {who}")

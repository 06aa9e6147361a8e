"""opsbench behind PgBouncer (transaction and session mode, with and without
`ignore_startup_parameters = options`) in front of a real PostgreSQL 15, as
many Supabase founders connect: every figure is the direct connection's, or the
command exits non-zero with one line naming the fix.

The cluster and the bouncers are Debian's binaries started by the tests
(tests/support/pgbouncer.py); skipped only when they are not installed.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
import textwrap
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from support.clock import clock_env
from support.digest_text import stable_lines
from support.daemon_support import ESSENTIAL_JOBS, REPO, wait_until
from support.pgbouncer import PG_BIN, PgCluster, missing

pytestmark = pytest.mark.skipif(missing() is not None, reason=missing() or "")

ANCHOR = dt.datetime(2026, 3, 10, 12, tzinfo=dt.timezone.utc)
ROLES = ("opsbench_ro", "opsbench_maint", "opsbench_state")
DB = "backend"
DAY = "2026-03-08"
ROUTES = [("transaction", False), ("transaction", True), ("session", False), ("session", True)]
PYTHON = sys.executable
LEADER_KEY = 0x6F7073626C656164


def _route_id(route) -> str:
    return f"{route[0]}-{'ignore-options' if route[1] else 'default'}"


@pytest.fixture(scope="module")
def pg15(tmp_path_factory):
    """PostgreSQL 15 with the demo data (fixed anchor) and deploy/roles.sql applied by the superuser."""
    from ops.data.seed import seed_database

    cluster = PgCluster.start()
    try:
        url = cluster.create_database(DB)
        manifest = seed_database(url, scale="small", seed=1, anchor=ANCHOR)
        passwords = {r: secrets.token_hex(12) for r in ROLES}
        done = subprocess.run([str(PG_BIN / "psql"), url, "-X", "-q", "-v", "ON_ERROR_STOP=1",
                               "-v", f"ro_password={passwords['opsbench_ro']}",
                               "-v", f"maint_password={passwords['opsbench_maint']}",
                               "-v", f"state_password={passwords['opsbench_state']}",
                               "-f", str(REPO / "deploy" / "roles.sql")], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        for role, pw in passwords.items():
            cluster.register_user(role, pw)
        cluster.manifest = manifest
        cluster.passwords = passwords
        cluster.home = tmp_path_factory.mktemp("pooler-home")
        yield cluster
    finally:
        from ops.data import db

        db.dispose_all()
        cluster.stop()


def _urls(cluster: PgCluster, route) -> dict[str, str]:
    mk = cluster.url if route == "direct" else cluster.bouncer(route[0], ignore_options=route[1]).url
    pw = cluster.passwords
    return {"DATABASE_URL": mk(DB, "opsbench_ro", pw["opsbench_ro"]),
            "MAINTENANCE_DATABASE_URL": mk(DB, "opsbench_maint", pw["opsbench_maint"]),
            "OPSBENCH_STATE_URL": mk(DB, "opsbench_state", pw["opsbench_state"])}


def _env(cluster: PgCluster, route, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPSBENCH_", "TELEGRAM_", "SENTRY_", "DATABASE_URL", "MAINTENANCE_", "HEARTBEAT_",
                                "REPORT_TZ", "ENVIRONMENT"))}
    env.update(_urls(cluster, route), **clock_env())
    env.update({"OPSBENCH_HOME": str(cluster.home), "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}",
                "REPORT_TZ": "UTC", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def _opsbench(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "ops", *args], env=env, cwd=str(cwd), capture_output=True, text=True,
                          timeout=300)


def _figures(cluster: PgCluster, route, cwd: Path) -> dict[str, subprocess.CompletedProcess]:
    env = _env(cluster, route)
    return {
        "doctor": _opsbench(env, cwd, "doctor"),
        "revenue": _opsbench(env, cwd, "query", "revenue.daily", "-p", "start=2026-02-20", "-p", f"end={DAY}",
                             "--format", "csv"),
        "activity": _opsbench(env, cwd, "query", "activity.daily", "-p", "start=2026-02-20", "-p", f"end={DAY}",
                              "--format", "csv"),
        "reconcile": _opsbench(env, cwd, "run", "reconcile"),
        "cleanup": _opsbench(env, cwd, "run", "cleanup", "--dry-run"),
        "report": _opsbench(env, cwd, "report", "daily", "--date", DAY),
    }


def _digest(text: str) -> list[str]:
    return stable_lines(text)


def _doctor_lines(stdout: str) -> dict[str, tuple[str, str]]:
    return {ln[6:27].strip(): (ln[:5].strip(), ln[27:].strip()) for ln in stdout.splitlines() if len(ln) > 27}


@pytest.fixture(scope="module")
def direct(pg15, tmp_path_factory):
    return _figures(pg15, "direct", tmp_path_factory.mktemp("direct"))


def test_direct_figures_are_the_generators(pg15, direct):
    """The reference: on the direct connection the figures are the demo manifest's."""
    for name, done in direct.items():
        assert done.returncode == 0, (name, done.stdout, done.stderr)
    for check, count in pg15.manifest["checks"].items():
        assert f"  reconcile_{check} = {count:g}\n" in direct["reconcile"].stdout, check
    lines = _doctor_lines(direct["doctor"].stdout)
    assert lines["session settings"][0] == "ok" and "read-only on, statement_timeout 1min" in lines[
        "session settings"][1]
    assert lines["leader lock"][0] == "ok"
    assert len(direct["revenue"].stdout.splitlines()) == 1 + 17  # a header and one row per day


@pytest.mark.parametrize("route", ROUTES, ids=_route_id)
def test_each_pooler_gives_the_direct_figures_or_one_line_with_the_fix(pg15, direct, route, tmp_path):
    got = _figures(pg15, route, tmp_path)
    for secret in pg15.passwords.values():
        assert all(secret not in d.stdout + d.stderr for d in got.values())
    for name in ("revenue", "activity"):
        assert got[name].returncode == 0, got[name].stderr
        assert got[name].stdout == direct[name].stdout, name
    assert got["reconcile"].returncode == 0, got["reconcile"].stdout + got["reconcile"].stderr
    metrics = [ln for ln in got["reconcile"].stdout.splitlines() if ln.startswith("  ")]
    assert metrics == [ln for ln in direct["reconcile"].stdout.splitlines() if ln.startswith("  ")]
    assert got["cleanup"].returncode == 0, got["cleanup"].stdout + got["cleanup"].stderr
    assert [ln for ln in got["cleanup"].stdout.splitlines() if ln.startswith("  ")] == \
        [ln for ln in direct["cleanup"].stdout.splitlines() if ln.startswith("  ")]
    assert got["report"].returncode == 0, got["report"].stderr
    assert _digest(got["report"].stdout) == _digest(direct["report"].stdout)

    doctor = got["doctor"]
    lines = _doctor_lines(doctor.stdout)
    assert lines["session settings"][0] == "ok", lines["session settings"]
    assert "read-only on, statement_timeout 1min" in lines["session settings"][1]
    if not route[1]:  # PgBouncer's default: options refused, connected without them
        assert "startup options refused by the server" in lines["session settings"][1]
    fails = [name for name, (level, _) in lines.items() if level == "FAIL"]
    if route[0] == "transaction":
        # the state URL cannot hold the leader lock: doctor fails on that one line, naming the fix
        assert fails == ["leader lock"], doctor.stdout
        assert "does not keep one server session" in lines["leader lock"][1]
        assert "session pooler" in lines["leader lock"][1]
        assert doctor.returncode == 1
    else:
        assert fails == [] and doctor.returncode == 0, doctor.stdout
        assert lines["leader lock"][0] == "ok"


@pytest.mark.parametrize("route", [("transaction", True), ("session", False)], ids=_route_id)
def test_the_notebook_api_through_a_pooler_reads_the_direct_figures(pg15, route, monkeypatch):
    from ops import notebook as nb
    from ops.core.settings import load_settings

    def read(urls: dict[str, str]):
        monkeypatch.setattr(nb, "_settings", load_settings(_env_file=None, OPSBENCH_HOME=str(pg15.home), **urls))
        return (nb.revenue_series("2026-02-20", DAY, tz="UTC"), nb.activity_series("2026-02-20", DAY, tz="UTC"),
                nb.describe())

    revenue, activity, line = read(_urls(pg15, route))
    want_revenue, want_activity, _ = read(_urls(pg15, "direct"))
    assert len(revenue) == 17 and revenue.equals(want_revenue)
    assert activity.equals(want_activity)
    assert "DATABASE_URL (read-only session) (statement_timeout 1min)" in line, line


# -- item 3: the settings hold where the pooler drops `options` ---------------------------------

def _settings(database_url: str, state_url: str):
    from ops.core.settings import load_settings

    return load_settings(_env_file=None, DATABASE_URL=database_url, OPSBENCH_STATE_URL=state_url)


def test_read_only_and_timeout_hold_where_the_pooler_drops_options(pg15):
    """The superuser (no role defaults) through a transaction pooler that drops `options`: a plain
    client gets a read-write session without a timeout; opsbench's transactions are read-only with
    the timeout, the server refuses a write, and nb.describe() says what holds."""
    from ops import notebook as nb
    from ops.data import db

    bouncer = pg15.bouncer("transaction", ignore_options=True)
    url = bouncer.url(DB)
    with psycopg.connect(url, options="-c default_transaction_read_only=on -c statement_timeout=60000",
                         prepare_threshold=None) as plain:
        assert plain.execute("SELECT current_setting('default_transaction_read_only'), "
                             "current_setting('statement_timeout')").fetchone() == ("off", "0")
    settings = _settings(url, url)
    engine = db.make_engine("analytics", settings)
    try:
        with engine.begin() as conn:
            shown = conn.execute(sa.text("SHOW default_transaction_read_only")).scalar_one(), \
                conn.execute(sa.text("SHOW statement_timeout")).scalar_one()
        assert shown == ("on", "1min")
        with engine.connect() as conn:
            with pytest.raises(sa.exc.DBAPIError) as info:
                conn.execute(sa.text("CREATE TABLE public.should_not_exist (x int)"))
            assert isinstance(info.value.orig, psycopg.errors.ReadOnlySqlTransaction)
    finally:
        engine.dispose()
    line = nb.describe(settings)
    assert "DATABASE_URL (read-only session) (statement_timeout 1min)" in line, line
    # doctor: right in each transaction, but the role itself is read-write: a warning with the fix
    from ops.workbench.doctor_pooler import session_settings_check

    check = session_settings_check(settings)
    assert check.level == "warn", check
    assert "transactions run with read-only on, statement_timeout 1min, set by opsbench in each transaction" \
        in check.message
    assert "ALTER ROLE postgres SET default_transaction_read_only = on" in check.message

    # the same through PgBouncer's default, which refuses `options`: connected without, same settings
    from ops.data import session

    refusing = pg15.bouncer("transaction", ignore_options=False).url(DB)
    engine = db.make_engine("analytics", _settings(refusing, refusing))
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SHOW transaction_read_only")).scalar_one() == "on"
        assert session.refused_options(engine.url)
    finally:
        engine.dispose()


def test_describe_says_when_the_session_is_not_read_only(pg15):
    """A session that really is read-write is described as such, not as "read-only session"."""
    from ops import notebook as nb

    url = pg15.url(DB)
    settings = _settings(url, url)
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.pool.NullPool)
    try:
        assert nb._session_words(engine).startswith("NOT a read-only session")
    finally:
        engine.dispose()
    assert "(read-only session)" in nb.describe(settings)


# -- item 4: no prepared-statement clashes behind a transaction pooler ------------------------------

_WORKER = textwrap.dedent("""
    import sys
    import sqlalchemy as sa
    from ops.core.settings import load_settings
    from ops.data import db
    import queries

    url, threshold = sys.argv[1], sys.argv[2]
    s = load_settings(_env_file=None, DATABASE_URL=url, OPSBENCH_STATE_URL=url)
    extra = {} if threshold == "default" else {"connect_args": {"prepare_threshold": int(threshold)}}
    engine = db.make_engine("analytics", s, **extra)
    for i in range(60):
        with engine.connect() as conn:
            queries.load("revenue").daily.execute(conn, start="2026-03-01", end="2026-03-08", tz="UTC").fetchall()
            conn.execute(sa.text("SELECT count(*) FROM users WHERE credits_remaining > :n"), {"n": i}).scalar()
    print("ok")
""")


def _workers(url: str, threshold: str) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}
    procs = [subprocess.Popen([PYTHON, "-c", _WORKER, url, threshold], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr))
    return out


def test_three_processes_through_a_transaction_pooler_share_server_sessions_without_prepared_statements(pg15):
    url = pg15.bouncer("transaction", ignore_options=True).url(DB, "opsbench_ro", pg15.passwords["opsbench_ro"])
    # the control: psycopg preparing statements (threshold 0 prepares at once) clashes, as the issue saw
    control = _workers(url, "0")
    assert any(p.returncode != 0 and ("DuplicatePreparedStatement" in p.stderr or "InvalidSqlStatementName"
                                      in p.stderr) for p in control), [p.stderr[-300:] for p in control]
    # opsbench's engines: never prepared, every process finishes
    for p in _workers(url, "default"):
        assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr[-2000:]


# -- item 5: leadership needs a session -------------------------------------------------------------

def _jobs_file(directory: Path) -> Path:
    path = directory / "jobs.toml"
    path.write_text(ESSENTIAL_JOBS, encoding="utf-8")
    return path


def _advisory_holders(cluster: PgCluster) -> list[tuple]:
    with cluster.admin(DB) as conn:
        return conn.execute(
            "SELECT l.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND ((l.objid::bigint) | (l.classid::bigint << 32)) = %s", (LEADER_KEY,)).fetchall()


def test_the_daemon_refuses_a_transaction_pooled_state_url_in_one_line(pg15, tmp_path):
    env = _env(pg15, ("transaction", True), OPSBENCH_JOBS_FILE=str(_jobs_file(tmp_path)))
    done = subprocess.run([PYTHON, "-m", "ops", "daemon"], env=env, cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1, done.stderr
    assert errors[0].startswith("opsbench: error: OPSBENCH_STATE_URL (")
    assert "does not keep one server session" in errors[0] and "session pooler" in errors[0]
    assert "Traceback" not in done.stdout + done.stderr
    assert pg15.passwords["opsbench_state"] not in done.stdout + done.stderr
    assert _advisory_holders(pg15) == []   # nothing left holding the lock in a pooled server session


def test_through_a_session_pooler_the_daemon_leads_status_names_the_holder_and_the_lock_goes_with_it(
        pg15, tmp_path):
    env = _env(pg15, ("session", True), OPSBENCH_JOBS_FILE=str(_jobs_file(tmp_path)))
    out, err = open(tmp_path / "daemon.out", "wb"), open(tmp_path / "daemon.err", "wb")
    proc = subprocess.Popen([PYTHON, "-m", "ops", "daemon"], env=env, cwd=str(tmp_path), stdout=out, stderr=err)
    try:
        holders = wait_until(lambda: _advisory_holders(pg15), 120, what="the daemon to take the leader lock")
        assert len(holders) == 1 and holders[0][1].startswith("opsbench-leader ")
        instance = holders[0][1].removeprefix("opsbench-leader ")
        assert f":{proc.pid}:" in instance

        status = _opsbench(env, tmp_path, "status")
        assert f"leader lock held by opsbench-leader {instance} as opsbench_state from 127.0.0.1:" in status.stdout, \
            status.stdout
        assert "session since 20" in status.stdout
        doctor = _doctor_lines(_opsbench(env, tmp_path, "doctor").stdout)
        assert doctor["leader lock"][0] == "ok" and f"opsbench-leader {instance}" in doctor["leader lock"][1]

        # the lock's server session ends under it: the loss is paged once, and resolved when it leads again
        with pg15.admin(DB) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (holders[0][0],))
        wait_until(lambda: _advisory_holders(pg15) and _advisory_holders(pg15)[0][0] != holders[0][0], 120,
                   what="the daemon to lead again")

        def events():
            with pg15.admin(DB) as admin:
                return admin.execute("SELECT kind FROM opsbench.alert_events WHERE rule = 'daemon_leadership' "
                                     "ORDER BY id").fetchall()

        wait_until(lambda: ("resolved",) in events(), 120, what="the leadership alert to resolve")
        assert [k for (k,) in events() if k in ("firing", "repeat")] == ["firing"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(120)
        finally:
            out.close()
            err.close()
    assert code == 0, (tmp_path / "daemon.err").read_text()
    assert _advisory_holders(pg15) == []   # released with the daemon, not left in the pooled session


# -- item 6: a read replica for analytics (a streaming standby made with pg_basebackup -R) ----------

@pytest.fixture(scope="module")
def standby(pg15):
    """The standby, with a scratch table the recovery-conflict tests lock on the primary."""
    with pg15.admin(DB) as admin:
        admin.execute("CREATE TABLE IF NOT EXISTS public.scratch (x int)")
        admin.execute("INSERT INTO public.scratch SELECT generate_series(1, 10)")
        admin.execute("GRANT SELECT ON public.scratch TO opsbench_ro")
    replica = pg15.make_standby()

    def caught_up() -> bool:
        with psycopg.connect(replica.url(DB), autocommit=True) as conn:
            return conn.execute("SELECT pg_is_in_recovery() AND count(*) = 10 FROM public.scratch").fetchone()[0]

    wait_until(caught_up, 120, what="the standby to replay the primary")
    return replica


def _replica_env(pg15, standby) -> dict[str, str]:
    pw = pg15.passwords
    return _env(pg15, "direct", DATABASE_URL=standby.url(DB, "opsbench_ro", pw["opsbench_ro"]))


def test_doctor_recognises_the_standby_and_queries_give_the_primarys_figures(pg15, standby, direct, tmp_path):
    env = _replica_env(pg15, standby)
    doctor = _opsbench(env, tmp_path, "doctor")
    lines = _doctor_lines(doctor.stdout)
    assert lines["replica"][0] == "ok", doctor.stdout
    assert lines["replica"][1].startswith("the analytics database is a standby (read replica), ")
    assert " s behind its primary" in lines["replica"][1]
    assert doctor.returncode == 0, doctor.stdout
    for name, query in (("revenue", "revenue.daily"), ("activity", "activity.daily")):
        got = _opsbench(env, tmp_path, "query", query, "-p", "start=2026-02-20", "-p", f"end={DAY}", "--format", "csv")
        assert got.returncode == 0 and got.stdout == direct[name].stdout, got.stderr


def _conflict_query(tmp_path: Path):
    from queries.loader import parse_sql_file

    path = tmp_path / "scratch.sql"
    path.write_text("-- name: slow_count\n-- Count the scratch rows slowly.\n-- :param s float  seconds to sleep\n"
                    "SELECT count(*) AS n, max(pg_sleep(:s)::text) AS slept FROM public.scratch\n")
    return parse_sql_file(path, "scratch")["slow_count"]


def _sleeping(standby, app: str) -> tuple | None:
    """(pid, query_start) of the standby session `app` while it sleeps inside the scratch query.

    Looked up from the `postgres` database (pg_stat_activity is cluster-wide), away from the table whose
    lock replay is taking; a look the standby cuts off while it replays counts as "not seen yet"."""
    try:
        with psycopg.connect(standby.url("postgres"), autocommit=True) as conn:
            return conn.execute("SELECT pid, query_start FROM pg_stat_activity WHERE application_name = %s "
                                "AND wait_event = 'PgSleep'", (app,)).fetchone()
    except psycopg.OperationalError:
        return None


def _lock_conflicts(standby) -> int:
    with psycopg.connect(standby.url(DB), autocommit=True) as conn:
        return conn.execute("SELECT confl_lock FROM pg_stat_database_conflicts WHERE datname = %s",
                            (DB,)).fetchone()[0]


def _lock_and_ship(cluster: PgCluster, primary: psycopg.Connection) -> None:
    """Take the lock replay conflicts with, and get its WAL record to the standby now: without a commit
    the record may wait in a partly filled WAL page (a segment switch flushes and ships it)."""
    primary.execute("LOCK TABLE public.scratch IN ACCESS EXCLUSIVE MODE")
    with cluster.admin(DB) as other:
        other.execute("SELECT pg_switch_wal()")


def _run_in_thread(fn):
    import threading

    box: dict = {}

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    return t, box


@contextmanager
def _standby_reader(pg15, standby, app: str):
    """The analytics engine on the standby, its sessions named `app` so the test can find them in
    pg_stat_activity; disposed when the test ends."""
    from ops.data import db

    url = standby.url(DB, "opsbench_ro", pg15.passwords["opsbench_ro"])
    engine = db.make_engine("analytics", _settings(url, pg15.url(DB)), connect_args={"application_name": app})
    try:
        yield engine
    finally:
        engine.dispose()


def test_a_query_cancelled_by_a_recovery_conflict_is_retried_once(pg15, standby, tmp_path):
    """The primary takes an ACCESS EXCLUSIVE lock on the table the standby query reads: replay cancels
    the query (max_standby_streaming_delay 1 s); the loader runs it again and returns its rows."""
    query = _conflict_query(tmp_path)
    app = "opsbench-conflict-once"
    before = _lock_conflicts(standby)
    try:
        with _standby_reader(pg15, standby, app) as engine:
            thread, box = _run_in_thread(lambda: query(engine, s=5))
            first = wait_until(lambda: _sleeping(standby, app), 60, what="the standby query to run")
            with pg15.admin(DB) as primary:
                with primary.transaction():
                    _lock_and_ship(pg15, primary)
                    # hold it until replay has cancelled the first run (the retry then waits for the lock)
                    wait_until(lambda: _sleeping(standby, app) != first, 60, what="the recovery conflict")
                    # from here replay waits for queries instead of cancelling them: the retry must not meet a
                    # second, unrelated conflict (autovacuum's cleanup of the seeded tables, say) in its 5 s
                    _standby_delay(standby, "-1")
            thread.join(120)
            assert "error" not in box, box.get("error")
            assert box["value"]["n"].tolist() == [10]
            # the first run was cancelled, not finished (the server counts the cancel, in its statistics a
            # moment later), and the second went through
            wait_until(lambda: _lock_conflicts(standby) > before, 60, what="the conflict to be counted")
    finally:
        _standby_delay(standby, None)


def _standby_delay(standby: PgCluster, value: str | None) -> None:
    """Set (or reset, None) the standby's max_standby_streaming_delay and wait until sessions see it."""
    with standby.admin() as conn:
        if value is None:
            conn.execute("ALTER SYSTEM RESET max_standby_streaming_delay")
        else:
            conn.execute(f"ALTER SYSTEM SET max_standby_streaming_delay = '{value}'")
        conn.execute("SELECT pg_reload_conf()")
    want = value if value is not None else "1s"

    def seen() -> bool:
        with standby.admin() as c:
            return c.execute("SHOW max_standby_streaming_delay").fetchone()[0] == want

    wait_until(seen, 30, what=f"max_standby_streaming_delay {want} on the standby")


def test_a_query_cancelled_twice_is_refused_in_one_line(pg15, standby, tmp_path):
    from ops.core.errors import QueryError

    query = _conflict_query(tmp_path)
    app = "opsbench-conflict-twice"
    with _standby_reader(pg15, standby, app) as engine:
        thread, box = _run_in_thread(lambda: query(engine, s=30))
        seen = None
        for n in (1, 2):
            # a run sleeping that is not the one cancelled before (the retry starts anew); under load the retry
            # can meet replay's lock change again before it sleeps: then the loader has given up already
            run = wait_until(lambda: (lambda r: r if r is not None and r != seen else None)(_sleeping(standby, app))
                             or (not thread.is_alive() and "gave up"), 60, what=f"standby run {n} to sleep")
            if run == "gave up":
                break
            with pg15.admin(DB) as primary:
                with primary.transaction():
                    _lock_and_ship(pg15, primary)
                    if n == 1:
                        wait_until(lambda: _sleeping(standby, app) != run, 60, what="conflict 1")
                    else:   # hold the lock until the loader has given up
                        thread.join(120)
            seen = run
        err = box.get("error")
        assert isinstance(err, QueryError), box
        text = str(err)
        assert len(text.splitlines()) == 1
        assert text.startswith("scratch.slow_count: the read replica cancelled it twice (")
        assert "conflict with recovery" in text and "hot_standby_feedback" in text


def test_lag_is_reported_when_replay_falls_behind(pg15, standby):
    from ops.data import replica

    with psycopg.connect(standby.url(DB), autocommit=True) as s:
        s.execute("SELECT pg_wal_replay_pause()")
        try:
            with pg15.admin(DB) as primary:
                primary.execute("INSERT INTO public.scratch VALUES (11)")

            def behind():
                row = s.execute("SELECT pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn()").fetchone()
                return row[0]

            wait_until(behind, 60, what="the standby to receive WAL it does not replay")
            eng = sa.create_engine(standby.url(DB).replace("postgresql://", "postgresql+psycopg://"),
                                   poolclass=sa.pool.NullPool)
            try:
                with eng.connect() as conn:
                    st = replica.status(conn)
                    assert st.standby and st.lag_s is not None and st.lag_s > 0
                    assert replica.lag_note(conn) is None or st.lag_s > replica.LAG_NOTE_S
                    note = replica.lag_note(conn, threshold_s=0)
                    assert note is not None and note.startswith("the analytics database is a read replica ")
            finally:
                eng.dispose()
        finally:
            s.execute("SELECT pg_wal_replay_resume()")

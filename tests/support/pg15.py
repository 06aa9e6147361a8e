"""Debian's PostgreSQL 15, started by the tests: the production shapes the embedded server cannot play.

`start()` runs initdb and pg_ctl from /usr/lib/postgresql/15/bin in a fresh temporary
directory, listening on 127.0.0.1 on a free port, with password (scram) logins only, and
returns a `Pg15Server`: `admin_url` (the bootstrap superuser), `url(db, user, password)`,
`psql(...)` and `stop()`. initdb refuses to run as root, so as root the server runs as
the unprivileged `postgres` OS user (the temporary directory is handed to it).

`pg15` is the session-scoped fixture (registered in tests/conftest.py): one server for
the whole session, skipped only when the binaries are missing (.ci/run installs
postgresql-15 when it runs as root). Other modules reuse it for poolers, standbys and
row level security; each makes its own databases and roles on it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest

BIN = Path(os.environ.get("OPSBENCH_PG15_BIN", "/usr/lib/postgresql/15/bin"))
PSQL = shutil.which("psql") or "/usr/bin/psql"
START_TIMEOUT_S = 120  # a generous limit for a loaded machine; pg_ctl -w returns as soon as it accepts


def available() -> bool:
    return (BIN / "initdb").is_file() and (BIN / "pg_ctl").is_file()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user() -> list[str]:
    """The prefix that runs a server binary as an unprivileged user: initdb and postgres refuse root."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--"]
    return ["su", "postgres", "-s", "/bin/sh", "-c"]  # pragma: no cover - Debian has runuser


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    prefix = _as_user()
    if prefix and prefix[0] == "su":  # su -c takes one shell string
        import shlex

        argv = prefix + [" ".join(shlex.quote(a) for a in argv)]
    else:
        argv = prefix + argv
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


@dataclass
class Pg15Server:
    """One running PostgreSQL 15 cluster in `base`."""

    base: Path
    port: int
    superuser: str
    password: str
    host: str = "127.0.0.1"
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.base / "server.log"

    @property
    def data(self) -> Path:
        return self.base / "data"

    def url(self, database: str = "postgres", user: str | None = None, password: str | None = None,
            port: int | None = None) -> str:
        """A libpq URL for `user` (the superuser by default) on `database`; `port` for a pooler in front."""
        user = user or self.superuser
        if password is None and user == self.superuser:
            password = self.password
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
        return f"postgresql://{auth}@{self.host}:{port or self.port}/{quote(database, safe='')}"

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def psql(self, url: str, *args: str, sql: str | None = None, check: bool = True,
             cwd: str | Path | None = None) -> subprocess.CompletedProcess:
        """Run psql against `url` (as this OS user: psql needs no privilege), `sql` on stdin."""
        proc = subprocess.run([PSQL, url, "-X", "-q", *args], input=sql, capture_output=True, text=True,
                              check=False, cwd=cwd, env={**os.environ, "PGCONNECT_TIMEOUT": "10"})
        if check and proc.returncode != 0:
            raise RuntimeError(f"psql failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def stop(self) -> None:
        _run([str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.base, ignore_errors=True)


def start(superuser: str = "supabase_admin", settings: dict[str, str] | None = None) -> Pg15Server:
    """initdb + pg_ctl start in a new temporary directory; the caller stops it (`stop()`)."""
    if not available():
        raise FileNotFoundError(f"PostgreSQL 15 binaries not found in {BIN}")
    base = Path(tempfile.mkdtemp(prefix="opsbench-pg15-"))
    password = secrets.token_hex(16)
    (base / "pwfile").write_text(password + "\n", encoding="utf-8")
    if os.geteuid() == 0:  # the server's own user must own its directory
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(base / "pwfile", "postgres", "postgres")
    srv = Pg15Server(base=base, port=free_port(), superuser=superuser, password=password)
    init = _run([str(BIN / "initdb"), "-D", str(srv.data), "-U", superuser, "--pwfile", str(base / "pwfile"),
                 "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
                 "--no-sync"])
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
    conf = {
        "listen_addresses": "'127.0.0.1'", "port": str(srv.port), "unix_socket_directories": f"'{srv.data}'",
        "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "100",
        "shared_buffers": "32MB", "log_min_messages": "warning", "wal_level": "replica",
        **(settings or {}),
    }
    with open(srv.data / "postgresql.conf", "a", encoding="utf-8") as f:
        f.write("\n# tests/support/pg15.py\n" + "".join(f"{k} = {v}\n" for k, v in conf.items()))
    started = _run([str(BIN / "pg_ctl"), "-D", str(srv.data), "-l", str(srv.log), "-w",
                    "-t", str(START_TIMEOUT_S), "start"])
    if started.returncode != 0:
        log = srv.log.read_text(encoding="utf-8", errors="replace") if srv.log.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()} {log[-2000:]}")
    _wait_ready(srv)
    return srv


def _wait_ready(srv: Pg15Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        proc = srv.psql(srv.admin_url, "-c", "SELECT 1", check=False)
        if proc.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL 15 did not accept connections: {proc.stderr.strip()}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def pg15():
    """The session's PostgreSQL 15 (bootstrap superuser `supabase_admin`); skipped only without the binaries."""
    if not available():
        pytest.skip(f"PostgreSQL 15 is not installed ({BIN}); .ci/run installs postgresql-15 as root")
    srv = start()
    yield srv
    srv.stop()

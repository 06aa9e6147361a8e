"""A real PostgreSQL 15 cluster and PgBouncer in front of it, started by the tests.

Debian's binaries (postgresql-15, pgbouncer; `.ci/run` installs them when root):
the cluster lives in a temporary directory, listens on 127.0.0.1 at a free port
and takes password (scram) logins; PgBouncer instances are made on demand, one
per (pool mode, whether `ignore_startup_parameters = options`), each with its
own ini and auth file. Both refuse to run as root, so as root they run as the
`postgres` OS user (runuser). Tests using them are skipped only when the
binaries are missing.

    cluster = PgCluster.start(tmp)          # superuser url: cluster.url("db")
    bouncer = cluster.bouncer("transaction", ignore_options=True)
    bouncer.url("db", user, password)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PGBOUNCER = Path("/usr/sbin/pgbouncer")
SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "pw-postgres"
READY_WITHIN_S = 60.0


def missing() -> str | None:
    """Why these tests cannot run here (a binary is missing), or None."""
    for path in (PG_BIN / "initdb", PG_BIN / "pg_ctl", PG_BIN / "pg_basebackup", PGBOUNCER):
        if not path.exists():
            return f"{path} is not installed (apt-get install postgresql-15 pgbouncer)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(argv: list[str]) -> list[str]:
    """initdb, postgres and pgbouncer refuse root: run them as the postgres OS user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


def _give(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


def _wait(what: str, ready, log: Path | None = None) -> None:
    deadline = time.monotonic() + READY_WITHIN_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except Exception as e:  # noqa: BLE001 - not up yet
            last = e
        time.sleep(0.1)
    tail = log.read_text()[-2000:] if log is not None and log.exists() else ""
    raise RuntimeError(f"{what} did not come up within {READY_WITHIN_S:.0f} s: {last}\n{tail}")


@dataclass
class Bouncer:
    mode: str
    ignore_options: bool
    port: int
    directory: Path
    proc: subprocess.Popen
    users: dict[str, str]

    def url(self, database: str, user: str = SUPERUSER, password: str | None = None) -> str:
        pw = password if password is not None else self.users[user]
        return f"postgresql://{quote(user)}:{quote(pw)}@127.0.0.1:{self.port}/{database}"

    def add_user(self, user: str, password: str) -> None:
        """Let `user` log in through this bouncer (the auth file is reread on SIGHUP)."""
        self.users[user] = password
        _write_userlist(self.directory / "userlist.txt", self.users)
        self.proc.send_signal(signal.SIGHUP)
        _wait(f"pgbouncer ({self.mode}) reload", lambda: _can_login(self.url("postgres", user, password)))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(20)


def _write_userlist(path: Path, users: dict[str, str]) -> None:
    path.write_text("".join(f'"{u}" "{p}"\n' for u, p in users.items()))
    _give(path)


def _can_login(url: str) -> bool:
    with psycopg.connect(url, connect_timeout=3, prepare_threshold=None) as conn:
        conn.execute("SELECT 1")
    return True


@dataclass
class PgCluster:
    directory: Path
    port: int
    data: Path
    bouncers: dict[tuple[str, bool], Bouncer] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=lambda: {SUPERUSER: SUPERUSER_PASSWORD})
    standby: "PgCluster | None" = None
    owns_directory: bool = False   # made by start(): stop() removes it

    @classmethod
    def start(cls, directory: Path | None = None) -> "PgCluster":
        directory = Path(directory or tempfile.mkdtemp(prefix="opsbench-pg15-"))
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o755)
        _give(directory)
        data = directory / "data"
        pwfile = directory / "pwfile"
        pwfile.write_text(SUPERUSER_PASSWORD + "\n")
        _give(pwfile)
        subprocess.run(_as_owner([str(PG_BIN / "initdb"), "-D", str(data), "-U", SUPERUSER, "--pwfile", str(pwfile),
                                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                                  "--locale=C.UTF-8"]),
                       check=True, capture_output=True, text=True, timeout=120)
        with open(data / "postgresql.conf", "a") as conf:
            # wal_level replica and a replication slot-free standby: pg_basebackup -R works off the primary
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{directory}'\n"
                       "max_connections = 200\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                       "wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n"
                       "max_standby_streaming_delay = 1s\n")
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 scram-sha-256\n")
        cluster = cls(directory, 0, data)
        cluster.owns_directory = True
        cluster._start_server()
        return cluster

    def _start_server(self) -> None:
        self.port = free_port()
        log = self.directory / f"{self.data.name}.log"
        subprocess.run(_as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-w", "-t", "60",
                                  "-o", f"-p {self.port}", "start"]),
                       check=True, capture_output=True, text=True, timeout=120)
        _wait("PostgreSQL 15", lambda: _can_login(self.url("postgres")), log)

    def url(self, database: str, user: str = SUPERUSER, password: str | None = None) -> str:
        pw = password if password is not None else self.users[user]
        return f"postgresql://{quote(user)}:{quote(pw)}@127.0.0.1:{self.port}/{database}"

    def admin(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(self.url(database), autocommit=True, prepare_threshold=None)

    def create_database(self, name: str) -> str:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def create_user(self, user: str, password: str, *attributes: str) -> None:
        with self.admin() as conn:
            conn.execute(f'CREATE ROLE "{user}" LOGIN {" ".join(attributes)} PASSWORD \'{password}\'')
        self.register_user(user, password)

    def register_user(self, user: str, password: str) -> None:
        """A login made outside (deploy/roles.sql): the bouncers let it in too."""
        self.users[user] = password
        for b in self.bouncers.values():
            b.add_user(user, password)

    def bouncer(self, mode: str, *, ignore_options: bool) -> Bouncer:
        """The PgBouncer in `mode` (transaction | session) in front of this cluster, started on first use."""
        key = (mode, ignore_options)
        if key in self.bouncers:
            return self.bouncers[key]
        directory = self.directory / f"bouncer-{mode}-{'ignore' if ignore_options else 'default'}"
        directory.mkdir(exist_ok=True)
        _give(directory)
        port = free_port()
        _write_userlist(directory / "userlist.txt", self.users)
        ignore = "ignore_startup_parameters = options, extra_float_digits\n" if ignore_options else ""
        ini = directory / "pgbouncer.ini"
        # a small transaction pool: concurrent clients share few server sessions, as they do in production
        ini.write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={self.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = scram-sha-256\nauth_file = {directory / 'userlist.txt'}\n"
            f"pool_mode = {mode}\ndefault_pool_size = {3 if mode == 'transaction' else 20}\n"
            "max_client_conn = 200\nserver_reset_query = DISCARD ALL\n"
            f"logfile = {directory / 'pgbouncer.log'}\npidfile = {directory / 'pgbouncer.pid'}\n"
            + ignore)
        _give(ini)
        proc = subprocess.Popen(_as_owner([str(PGBOUNCER), str(ini)]), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        b = Bouncer(mode, ignore_options, port, directory, proc, dict(self.users))

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"pgbouncer exited with {proc.returncode}")
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True

        _wait(f"pgbouncer ({mode})", ready, directory / "pgbouncer.log")
        self.bouncers[key] = b
        return b

    def make_standby(self) -> "PgCluster":
        """A streaming hot standby of this cluster (pg_basebackup -R), started on a port of its own."""
        if self.standby is not None:
            return self.standby
        data = self.directory / "standby"
        env = {**os.environ, "PGPASSWORD": SUPERUSER_PASSWORD}
        subprocess.run(_as_owner([str(PG_BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.port),
                                  "-U", SUPERUSER, "-D", str(data), "-R", "-X", "stream", "-c", "fast"]),
                       check=True, capture_output=True, text=True, timeout=300, env=env)
        standby = PgCluster(self.directory, 0, data, users=self.users)
        standby._start_server()
        self.standby = standby
        return standby

    def stop(self) -> None:
        for b in self.bouncers.values():
            b.stop()
        self.bouncers.clear()
        if self.standby is not None:
            self.standby.stop()
            self.standby = None
        subprocess.run(_as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
                       capture_output=True, text=True, timeout=120)
        if self.owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

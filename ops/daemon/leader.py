"""One leader among several daemons: a session advisory lock on the state database.

Every daemon opens one dedicated connection (not from a pool) to the state
database and, about once a second, either tries `pg_try_advisory_lock(KEY)`
(standby) or checks that its session still holds it (leader). Only the
leader runs jobs.

- A leader that dies (crash, `kill -9`, machine gone) loses its session, so
  PostgreSQL releases the lock and a standby takes it at its next poll:
  within about `poll_s` seconds when the socket closes cleanly; for a machine
  that vanishes without closing TCP, when the server's keepalive probes give
  up (the session sets `tcp_keepalives_*` to about 25 s).
- A leader whose lock connection fails, or whose check has not succeeded for
  `lease_s` seconds (a hung network), stops running jobs at once: `on_lost`
  runs first (the daemon removes every scheduled job), `is_leader()` turns
  false (the runner's gate refuses new runs), and only then does the elector
  reconnect and try to lead again. The lease is shorter than the server's
  keepalive timeout, so the old leader has stopped before the lock is free.
  A job already running in the old leader's threads cannot be killed: it
  finishes and records its own row, and the new leader does not run any job
  until that row is closed (fencing, in ops.daemon.scheduler): it first claims the
  leader term (`opsbench.leader_term`; a daemon inserts a run row only while
  the term is its own, so a deposed leader that has not noticed yet starts
  nothing), then waits for runs still `running` under live instances,
  bounded by each job's timeout. Runs of instances that are gone (stopped,
  or no heartbeat for a few seconds) are closed as interrupted at once.
- Every poll (every `beat_s`, by default every poll) also writes this
  instance's row in `opsbench.daemon_instances` (last seen, leading or not,
  and a heartbeat on the state server's clock) for `opsbench status` and for
  a new leader deciding whether an old leader is gone or still finishing a run.

PgBouncer: session advisory locks belong to a server session. In PgBouncer's
*transaction* (or statement) pooling mode consecutive statements of one client
connection may run on different server sessions, so the lock is taken on one
session and checked (or released) on another, or held by a session another
client then uses: leader election silently breaks. Point OPSBENCH_STATE_URL
straight at PostgreSQL (or at a PgBouncer pool in *session* mode); Supabase's
transaction pooler on port 6543 will not do, its session pooler or direct
connection on 5432 will. This is detected, not assumed: the daemon refuses to
start (`ops.data.session.session_problem`, run by `Daemon.run`), and the
elector checks again at each (re)connect and never takes the lock on a
connection that does not keep its session, so no lock is left behind in a
pooled server session after the daemon is gone.

The lock connection's application_name carries the instance id, so
`opsbench status` and doctor can say who holds the lock (`holder()`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

import queries
from ops import __version__
from ops.contract import utc_now
from ops.core.redact import redact
from ops.data import session

log = logging.getLogger("opsbench.leader")

# "opsblead" as a 64-bit key; advisory locks are per database, so daemons of
# different state databases never contend.
LEADER_LOCK_KEY = 0x6F7073626C656164


def leader_application_name(identity: str) -> str:
    """The lock connection's application_name: names the instance to whoever looks at pg_stat_activity."""
    return f"opsbench-leader {identity}"[:63]


def holder(conn: sa.Connection, key: int = LEADER_LOCK_KEY) -> str | None:
    """Who holds the leader lock, in words (application name, client address, session start), or None."""
    row = _sql().lock_holder_session.execute(conn, key=key).first()
    if row is None:
        return None
    if row.application_name is None and row.backend_start is None:
        return f"server process {row.pid} (its details are hidden from this role: GRANT pg_read_all_stats)"
    addr = f"{row.client_addr}:{row.client_port}" if row.client_addr else "a local socket"
    since = row.backend_start.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{row.application_name or '(no application name)'} as {row.user_name} from {addr}, session since {since}"


def new_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _sql():
    return queries.load("state/daemon")


class LeaderElector:
    """Background thread that takes, keeps and gives up the leader lock."""

    def __init__(self, url: sa.URL | str, *, identity: str | None = None, environment: str = "development",
                 on_elected: Callable[[], None] = lambda: None, on_lost: Callable[[str], None] = lambda r: None,
                 poll_s: float = 1.0, lease_s: float = 5.0, beat_s: float | None = None, key: int = LEADER_LOCK_KEY,
                 clock: Callable[[], dt.datetime] = utc_now):
        self.identity = identity or new_identity()
        self.environment = environment
        self.key = key
        self.poll_s, self.lease_s = poll_s, lease_s
        self.beat_s = poll_s if beat_s is None else beat_s
        self.clock = clock
        self._on_elected, self._on_lost = on_elected, on_lost
        self._engine = sa.create_engine(
            url, poolclass=NullPool, hide_parameters=True,
            connect_args={
                "application_name": leader_application_name(self.identity),
                "prepare_threshold": None,
                "connect_timeout": max(2, int(lease_s)),
                # a check that hangs fails instead; the server notices a vanished
                # client after ~25 s of unanswered keepalives and frees the lock
                "options": f"-c statement_timeout={int(lease_s * 1000)} -c tcp_keepalives_idle=10"
                           " -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3",
                "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 2,
                "tcp_user_timeout": int(lease_s * 1000),
            },
        )
        session.connect_without_refused_options(self._engine)
        session.set_on_connect(self._engine, statement_timeout_ms=int(lease_s * 1000))  # also without `options`
        self._url = url
        self.refused: str | None = None      # why this state URL cannot hold the lock (no server session of its own)
        self._conn: sa.Connection | None = None
        self._leading = False
        self._last_ok = 0.0
        self._last_beat = 0.0
        self.leader_since: dt.datetime | None = None
        self.started_at = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- public --------------------------------------------------------------
    def is_leader(self) -> bool:
        """True only while the lock is held and was confirmed within the lease."""
        with self._lock:
            return self._leading and time.monotonic() - self._last_ok < self.lease_s

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="leader-elector", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Give up the lead (if held), mark this instance stopped, close the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def poll_once(self) -> bool:
        """One election round (the loop calls this every poll_s). Returns is_leader()."""
        try:
            if self._conn is None:
                problem = session.session_problem(self._url)
                if problem is not None:
                    # never take the lock on a session that is not ours: it would outlive this daemon
                    if self.refused is None:
                        log.error("not leading: %s", session.needs_session_fix("OPSBENCH_STATE_URL",
                                  sa.make_url(self._url).render_as_string(hide_password=True), problem),
                                  extra={"instance": self.identity})
                    self.refused = problem
                    return False
                self.refused = None
                self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if not self._leading:
                got = bool(_sql().try_lock.execute(self._conn, key=self.key).scalar())
                if got:
                    self._become_leader()
                else:
                    self._beat(force=False)
            else:
                held = bool(_sql().holds_lock.execute(self._conn, key=self.key).scalar())
                if not held:
                    raise RuntimeError("the leader lock is no longer held by this session")
                with self._lock:
                    self._last_ok = time.monotonic()
                self._beat(force=False)
        except Exception as e:
            self._drop(f"{type(e).__name__}: {redact(e)}".splitlines()[0])
        else:
            if self._leading and time.monotonic() - self._last_ok >= self.lease_s:
                self._drop("lease expired")
        return self.is_leader()

    # -- internals -------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.poll_s)
        self._shutdown()

    def _become_leader(self) -> None:
        with self._lock:
            self._leading = True
            self._last_ok = time.monotonic()
        self.leader_since = self.clock()
        self._beat(force=True)
        log.info("this daemon is now the leader", extra={"instance": self.identity})
        try:
            self._on_elected()
        except Exception as e:
            log.error("could not start leading: %s", redact(e), extra={"instance": self.identity})
            from ops.core import sentry

            sentry.capture_exception(e, tags={"component": "leader"})
            self._drop("start-up as leader failed")

    def _drop(self, reason: str) -> None:
        """Stop leading first, then throw the connection away (the next poll reconnects)."""
        was_leading = self._leading
        with self._lock:
            self._leading = False
        self.leader_since = None
        if was_leading:
            log.error("lost the leader lock: %s; jobs stopped", reason, extra={"instance": self.identity})
            try:
                self._on_lost(reason)
            except Exception as e:
                log.error("on_lost failed: %s", redact(e))
        else:
            log.warning("leader election connection problem: %s", reason, extra={"instance": self.identity})
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def _beat(self, *, force: bool) -> None:
        now_mono = time.monotonic()
        if not force and now_mono - self._last_beat < self.beat_s:
            return
        _sql().upsert_instance.execute(
            self._conn, instance=self.identity, host=socket.gethostname(), pid=os.getpid(), version=__version__,
            environment=self.environment, started_at=self.started_at, now=self.clock(),
            is_leader=self._leading, leader_since=self.leader_since)
        self._last_beat = now_mono

    def _shutdown(self) -> None:
        was_leading = self._leading
        with self._lock:
            self._leading = False
        if self._conn is None:
            return
        try:
            if was_leading:
                _sql().unlock.execute(self._conn, key=self.key)
            _sql().stop_instance.execute(self._conn, instance=self.identity, now=self.clock())
            log.info("leader election stopped%s", "; lock released" if was_leading else "",
                     extra={"instance": self.identity})
        except Exception as e:
            log.warning("could not release the leader lock cleanly: %s", redact(e))
        finally:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
            self._engine.dispose()

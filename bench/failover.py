"""Leader failover, measured: two real daemon processes, the leader killed with SIGKILL.

The figure is the time from `kill -9` of the leader to the first job run the
standby starts: its next lock poll, then the fence (the dead leader's runs are
closed once its heartbeat is DEFAULT_FENCE_GRACE_S old), then the scheduler.
tests/test_leader.py asserts it with room (FAILOVER_LIMIT_S); this is the
real number on this machine. Each trial uses a fresh state database on the
benchmark's own server.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import psycopg
import psycopg.sql
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

import queries
from bench import server
from ops.data import embedded
from ops.data.db import sqlalchemy_url
from ops.data.state import migrate

DATABASE = "bench_failover"
# a job every second, so the standby's first run comes right after it may run jobs
JOBS = """
[jobs.tick]
callable = "jobs.builtin:heartbeat"
interval = 1
timeout = 10
catch_up = false
"""
LIMIT_S = 120.0   # a trial that takes longer is reported as failed, not waited for
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)   # "every instance ever seen"


def _drop_database() -> None:
    with psycopg.connect(server.admin_url(), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(DATABASE)))


def _fresh_database() -> str:
    _drop_database()
    embedded.ensure_database(server.admin_url(), DATABASE)
    return embedded.server_url(server.settings(), DATABASE)


def _leaders(engine) -> list[str]:
    return list(queries.load("state/daemon").runs(engine, job="tick", limit=10_000).leader)


def _until(predicate: Callable[[], bool], limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {limit_s:g} s")
        time.sleep(0.05)


def trial(home: Path) -> float:
    """One failover; returns the seconds from kill -9 of the leader to the standby's first run."""
    url = _fresh_database()
    engine = sa.create_engine(sqlalchemy_url(url), poolclass=NullPool)
    migrate(engine)
    jobs = home / "jobs.toml"
    jobs.write_text(JOBS, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBENCH_", "TELEGRAM_", "SENTRY_", "HEARTBEAT"))}
    env.update(PYTHONPATH=str(server.REPO), DATABASE_URL=url, OPSBENCH_STATE_URL=url, OPSBENCH_HOME=str(home),
               OPSBENCH_JOBS_FILE=str(jobs), ENVIRONMENT="bench")
    procs: list[subprocess.Popen] = []

    def daemon() -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-m", "ops", "daemon"], env=env, cwd=home,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        return p

    try:
        a = daemon()
        _until(lambda: any(f":{a.pid}:" in x for x in _leaders(engine)), LIMIT_S, "run of the first daemon")
        b = daemon()
        sql = queries.load("state/daemon")
        _until(lambda: b.pid in set(sql.instances(engine, since=EPOCH).pid), LIMIT_S, "check-in of the standby")
        a.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        a.wait(30)
        _until(lambda: any(f":{b.pid}:" in x for x in _leaders(engine)), LIMIT_S, "run of the standby")
        return time.monotonic() - killed
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        engine.dispose()


def run(trials: int, log: Callable[[str], None]) -> dict:
    seconds = []
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        for i in range(trials):
            s = trial(Path(tmp))
            seconds.append(round(s, 2))
            log(f"failover trial {i + 1}/{trials}: {s:.2f} s from kill -9 to the standby's first run")
    _drop_database()
    return {"trials": seconds, "median_s": statistics.median(seconds), "max_s": max(seconds)}

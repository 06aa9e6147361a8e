"""Helpers for tests that start `opsbench daemon` as real subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

import queries
from support.clock import clock_env

REPO = Path(__file__).resolve().parents[2]
# The daemon's own jobs (outbox delivery, heartbeat) as a jobs file declares them (jobs/jobs.toml)
ESSENTIAL_JOBS = """
[jobs.drain_outbox]
callable = "jobs.builtin:drain_outbox"
interval = "30s"
[jobs.heartbeat]
callable = "jobs.builtin:heartbeat"
interval = "1m"
"""
PYTHON = REPO / ".venv" / "bin" / "python"


def write_jobs_file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def daemon_env(db_url: str, home: Path, jobs_file: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPSBENCH_", "TELEGRAM_", "SENTRY_", "DATABASE_URL", "MAINTENANCE_DATABASE_URL",
                                "HEARTBEAT_URL", "REPORT_TZ"))}
    env.update({
        "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}",
        "DATABASE_URL": db_url,
        "OPSBENCH_STATE_URL": db_url,
        "OPSBENCH_HOME": str(home),
        "OPSBENCH_JOBS_FILE": str(jobs_file),
        "ENVIRONMENT": "test",
        "PYTHONUNBUFFERED": "1",
        **clock_env(),
    })
    env.update(extra)
    return env


class DaemonProcess:
    """`python -m ops daemon` with stdout/stderr in files (JSON log lines on stdout)."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str, *args: str):
        self.stdout_path = log_dir / f"{name}.out"
        self.stderr_path = log_dir / f"{name}.err"
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([str(PYTHON), "-m", "ops", "daemon", *args], env=env, cwd=str(log_dir),
                                     stdout=self._out, stderr=self._err)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout_s: float) -> int:
        try:
            return self.proc.wait(timeout_s)
        finally:
            self._out.close()
            self._err.close()

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def runs(engine, job: str | None = None) -> pd.DataFrame:
    return queries.load("state/daemon").runs(engine, job=job, limit=10_000)


def instances(engine, since) -> pd.DataFrame:
    return queries.load("state/daemon").instances(engine, since=since)


def wait_until(predicate, timeout_s: float, interval_s: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def python_exe() -> str:
    return str(PYTHON) if PYTHON.exists() else sys.executable

"""What the founder waits for, timed side by side in one run: CLI start, the digests, the jobs.

Each timing is the median of `runs` after one warm-up, measured against a
floor from the same run: for the CLI a bare `python -c pass`, for the
reports and jobs the sum of the sequential passes over the tables they read
(`timing.floors`), and for the reconcile job also the sum of its checks run
as plain statements, which is the least any runner of those checks can do.
"""

from __future__ import annotations

import datetime as dt
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import sqlalchemy as sa

import queries
from bench import server
from bench.timing import interleaved_ms, median_ms
from ops.core.settings import load_settings
from ops.daemon.jobspec import load_jobs
from ops.daemon.runner import Runner
from ops.data import db, rollups, series
from ops.data.state import migrate
from ops.reports import figures, message

REPO = Path(__file__).resolve().parents[1]
TZ = "UTC"

# the tables each timed piece reads most of (its floor is the sum of their passes)
READS = {
    "daily digest": ("purchases", "quota_log", "video_jobs", "error_log", "users"),
    "weekly report": ("purchases", "quota_log", "video_jobs", "error_log", "users"),
    "reconcile job": ("users", "quota_log", "video_jobs", "purchases"),
    "rollups job (refresh)": ("purchases", "quota_log", "video_jobs", "error_log", "users"),
    "metric_probes job": ("video_jobs", "purchases", "rate_limit_log"),
}


def cli_start(runs: int, log: Callable[[str], None]) -> dict[str, dict[str, float | None]]:
    """`opsbench --help` and `opsbench query --list` against a bare Python start, interleaved in one run."""
    def cli(argv: list[str]) -> Callable[[], None]:
        return lambda: subprocess.run([sys.executable, "-m", "ops", *argv], cwd=REPO, capture_output=True,
                                      check=True, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp",
                                                       "PYTHONPATH": str(REPO)})
    cases = {"python -c pass": lambda: subprocess.run([sys.executable, "-c", "pass"], check=True),
             "opsbench --help": cli(["--help"]), "opsbench query --list": cli(["query", "--list"])}
    ms = interleaved_ms(cases, runs)
    py = ms["python -c pass"]
    out = {}
    for label in ("opsbench --help", "opsbench query --list"):
        out[label] = {"median_ms": ms[label], "floor_ms": py, "ratio": round(ms[label] / py, 2) if py else None}
        log(f"{label}: {ms[label]} ms (python start {py} ms)")
    return out


def _job_ms(runner: Runner, job: str, runs: int) -> tuple[float, str]:
    statuses: list[str] = []

    def once() -> None:
        record = runner.run(job, trigger="manual")
        statuses.append(str(record.status))
    ms = median_ms(once, runs)[0]
    return ms, statistics.mode(statuses)


def _plain_checks_ms(engine: sa.Engine, runs: int) -> float:
    subject = queries.load("reconciliation")
    names = [n for n, q in subject.queries.items() if n != "summary" and not any(p.required for p in q.params)]

    def once() -> None:
        with engine.connect() as c:
            for n in names:
                c.execute(sa.text(f"SELECT count(*) FROM (\n{subject.queries[n].sql}\n) AS q")).scalar_one()
    return median_ms(once, runs)[0]


def run(scale: str, anchor: dt.datetime, floors_ms: dict[str, float], ro: sa.Engine, runs: int,
        log: Callable[[str], None]) -> dict[str, Any]:
    url = server.url(scale)
    settings = load_settings(DATABASE_URL=url, OPSBENCH_STATE_URL=url, REPORT_TZ=TZ,
                             OPSBENCH_HOME=str(server.BENCH_HOME))
    state = db.make_engine("state", settings)
    migrate(state)
    analytics = db.make_engine("analytics", settings)
    day = anchor.date() - dt.timedelta(days=1)
    out: dict[str, Any] = {"cli": {}, "pieces": {}}

    out["cli"] = cli_start(runs, lambda msg: log(f"{scale}: {msg}"))

    def floor(piece: str) -> float:
        return round(sum(floors_ms.get(t, 0.0) for t in READS[piece]), 2)

    specs = {s.id: s for s in load_jobs(settings)}
    runner = Runner(settings, specs, state_engine=state, identity="bench", clock=lambda: anchor)
    for piece, job in (("reconcile job", "reconcile"), ("rollups job (refresh)", "rollups"),
                       ("metric_probes job", "metric_probes")):
        if job not in specs:
            continue
        ms, status = _job_ms(runner, job, runs)
        out["pieces"][piece] = {"median_ms": ms, "floor_ms": floor(piece), "status": status}
        log(f"{scale}: {piece}: {ms} ms ({status})")
    # the digests after the jobs, as at 09:00: the reconcile job's result and the rollups are there to reuse
    for piece, kind in (("daily digest", "daily"), ("weekly report", "weekly")):
        window = figures.window_for(kind, day, TZ)

        def build() -> None:
            rep = figures.build(analytics, settings, kind, window=window, state=state, now=anchor)
            message.telegram_message(rep)
        ms = median_ms(build, runs)[0]
        out["pieces"][piece] = {"median_ms": ms, "floor_ms": floor(piece)}
        log(f"{scale}: {piece}: {ms} ms")

    # what the rollups changed in the digest, side by side in one run: its series (30 days of revenue,
    # activity, errors, durations) and failure codes read raw (as before) and through the rollups
    window = figures.window_for("daily", day, TZ)
    chart = figures.Window(window.end - dt.timedelta(days=figures.CHART_DAYS["daily"] - 1), window.end, TZ)
    today = rollups.local_today(TZ, anchor)

    def digest_data(st) -> Callable[[], None]:
        def once() -> None:
            with analytics.connect() as conn:
                figures.load_series(series.check(analytics, st, TZ).via(conn), chart, today=today)
                rollups.failure_codes(conn, st, window.start, window.end, tz=TZ, today=today)
        return once
    both = interleaved_ms({"raw": digest_data(None), "rollups": digest_data(state)}, runs)
    out["digest_data"] = {"raw_ms": both["raw"], "rollups_ms": both["rollups"]}
    log(f"{scale}: digest series + codes: raw {both['raw']} ms, rollups {both['rollups']} ms")

    plain = _plain_checks_ms(ro, runs)
    out["pieces"]["reconcile job"]["plain_checks_ms"] = plain
    log(f"{scale}: reconcile checks as plain statements: {plain} ms")
    for p in out["pieces"].values():
        p["ratio"] = round(p["median_ms"] / p["floor_ms"], 2) if p.get("floor_ms") else None
    runner.runtime.dispose()
    state.dispose()
    analytics.dispose()
    return out

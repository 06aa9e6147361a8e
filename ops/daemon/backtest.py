"""The backtest: what the founder would have received over a past window.

It replays the jobs that judge the backend's data (the metric probes and the
reconciliation checks of the jobs file) at every moment they would have run in
the window, each with the clock set to that moment (`ctx.now`), and feeds every
result to the real alert manager (`ops/alerting/manager.py`) with the same
hand-off the runner makes. The alert state lives in a scratch database created
for the run on the state store's server (schema `opsbench`, migrated as usual)
and dropped afterwards, so the founder's real alerts, outbox and history are
never touched and nothing is sent.

What it can and cannot rewind:
- the metric probes take `now` in every query (windows end at `now`, stuck jobs
  and balances are judged as they were then), so they see the past as it was;
- the reconciliation checks read the whole ledger as it is today; a backtest
  cannot rewind them, so their findings are today's from the first nightly run
  in the window on (the demo's planted reconciliation faults, counted apart).

With the generator's manifest (the demo data), every planted incident is
matched with the first page about it, and every message that no planted
incident or fault explains is counted as noise.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ops.alerting import lifecycle, manager
from ops.contract import JobContext, JobResult, RunStatus
from ops.core.clock import utc_now
from ops.core.errors import UserError
from ops.core.redact import redact
from ops.core.settings import Settings
from ops.daemon import jobspec
from ops.daemon.jobspec import JobSpec
from ops.daemon.runner import JOB_STATUSES, Runner
from ops.data import db, runtime
from ops.data.state import migrate
from queries import loader

log = logging.getLogger("opsbench.backtest")

# the jobs a backtest replays: those that judge the backend's data
REPLAYED = ("jobs.metrics:", "jobs.reconcile:")

# planted incident (the generator's manifest) -> the alert rules that page about it, and the
# labels an alert must carry to count (taken from the incident's manifest entry)
INCIDENT_RULES: dict[str, tuple[tuple[str, dict[str, str]], ...]] = {
    "failure_spike": (("job_error_rate", {"provider": "provider"}),),
    "stuck_jobs": (("stuck_jobs", {}),),
    "negative_balance": (("negative_balance", {}), ("reconcile_negative_balances", {})),
    "purchases_stopped": (("purchases_stopped", {}),),
    "abuse": (("high_usage", {"who": "ip"}), ("rate_limit_near", {"ip": "ip"})),
}
# how long after an incident ends its alerts still count as its own: the error rate's 6 h window still
# sees it, and its RESOLVED follows
AFTERGLOW = dt.timedelta(hours=8)
# announcements that reach the phone about a new or continuing problem
PAGE_KINDS = ("firing", "repeat", manager.FLAPPING)


@dataclass(frozen=True)
class Notice:
    """One alert in one message."""

    at: dt.datetime
    key: str
    rule: str
    severity: str
    kind: str                       # firing | repeat | resolved | flapping
    message: int                    # index of the message it went out in
    explained_by: str | None = None  # the planted incident or fault it is about; None: noise


@dataclass(frozen=True)
class Message:
    at: dt.datetime
    critical: bool                  # carries a critical FIRING/repeat (a page at any hour)
    keys: tuple[str, ...]


@dataclass
class IncidentOutcome:
    kind: str
    start: dt.datetime
    end: dt.datetime | None
    first_page: dt.datetime | None = None
    first_page_rule: str | None = None
    messages: int = 0
    in_window: bool = True          # began inside the replayed window (else its latency means nothing)

    @property
    def latency(self) -> dt.timedelta | None:
        return None if self.first_page is None else self.first_page - self.start


@dataclass
class BacktestReport:
    start: dt.datetime
    end: dt.datetime
    step: dt.timedelta
    jobs: dict[str, int] = field(default_factory=dict)          # job -> runs replayed
    failed_runs: dict[str, int] = field(default_factory=dict)   # job -> runs that failed
    messages: list[Message] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    incidents: list[IncidentOutcome] = field(default_factory=list)
    has_manifest: bool = False
    seconds: float = 0.0

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400

    def per_rule(self) -> list[tuple[str, str, int, int]]:
        """(rule, severity, messages it appeared in, of which outside every planted incident)."""
        seen: Counter = Counter()
        noise: Counter = Counter()
        for n in self.notices:
            seen[(n.rule, n.severity)] += 1
            if n.explained_by is None:
                noise[(n.rule, n.severity)] += 1
        return [(r, s, c, noise[(r, s)]) for (r, s), c in sorted(seen.items())]

    def per_day(self, zone) -> list[tuple[dt.date, int, int]]:
        """(local day, messages, critical messages) for every day of the window."""
        days: dict[dt.date, list[int]] = {}
        d = self.start.astimezone(zone).date()
        while d <= (self.end - dt.timedelta(microseconds=1)).astimezone(zone).date():
            days[d] = [0, 0]
            d += dt.timedelta(days=1)
        for m in self.messages:
            row = days.setdefault(m.at.astimezone(zone).date(), [0, 0])
            row[0] += 1
            row[1] += int(m.critical)
        return [(d, a, b) for d, (a, b) in sorted(days.items())]

    def noise_messages(self) -> list[tuple[Message, str]]:
        """Messages with at least one alert no planted incident or fault explains, with their worst severity."""
        by_msg: dict[int, list[Notice]] = {}
        for n in self.notices:
            if n.explained_by is None:
                by_msg.setdefault(n.message, []).append(n)
        out = []
        for i, ns in sorted(by_msg.items()):
            worst = min(ns, key=lambda n: {"critical": 0, "warning": 1, "info": 2}.get(n.severity, 3))
            out.append((self.messages[i], worst.severity if worst.kind != "resolved" else "resolved"))
        return out

    def noise_counts(self) -> dict[str, int]:
        """Noise messages by worst severity: critical, non-critical (warning, info, resolved)."""
        c = Counter("critical" if sev == "critical" else "non_critical" for _, sev in self.noise_messages())
        return {"critical": c["critical"], "non_critical": c["non_critical"]}

    def as_dict(self, zone) -> dict[str, Any]:
        noise = self.noise_counts()
        return {
            "start": self.start.isoformat(), "end": self.end.isoformat(), "step_s": self.step.total_seconds(),
            "days": round(self.days, 3), "runs": self.jobs, "failed_runs": self.failed_runs,
            "messages": len(self.messages), "critical_messages": sum(m.critical for m in self.messages),
            "noise": {**noise, "non_critical_per_week": round(noise["non_critical"] / max(self.days, 1e-9) * 7, 2)},
            "per_rule": [{"rule": r, "severity": s, "notices": c, "outside_incidents": o}
                         for r, s, c, o in self.per_rule()],
            "per_day": [{"day": d.isoformat(), "messages": a, "critical": b} for d, a, b in self.per_day(zone)],
            "incidents": [{"kind": i.kind, "start": i.start.isoformat(),
                           "end": i.end.isoformat() if i.end else None,
                           "first_page": i.first_page.isoformat() if i.first_page else None,
                           "first_page_rule": i.first_page_rule,
                           "minutes_to_first_page": None if i.latency is None
                           else round(i.latency.total_seconds() / 60, 1),
                           "messages": i.messages, "in_window": i.in_window} for i in self.incidents],
            "notices": [{"at": n.at.isoformat(), "key": n.key, "rule": n.rule, "severity": n.severity,
                         "kind": n.kind, "message": n.message, "explained_by": n.explained_by}
                        for n in self.notices],
            "has_manifest": self.has_manifest, "seconds": round(self.seconds, 1),
        }


# -- the schedule ------------------------------------------------------------------

def replayed_jobs(settings: Settings, only: Iterable[str] | None = None) -> dict[str, JobSpec]:
    specs = {s.id: s for s in jobspec.load_jobs(settings) if s.enabled}
    if only:
        wanted = list(only)
        unknown = [j for j in wanted if j not in specs]
        if unknown:
            raise UserError(f"--job: no enabled job {unknown[0]!r} in the jobs file")
        return {j: specs[j] for j in wanted}
    return {i: s for i, s in specs.items() if s.callable.startswith(REPLAYED)}


def fire_times(spec: JobSpec, start: dt.datetime, end: dt.datetime,
               step: dt.timedelta | None) -> list[dt.datetime]:
    """When the job would have run in [start, end): interval jobs every `step` (default: their
    interval) on the clock's multiples, cron jobs on their crontab in their zone."""
    if spec.cron is None:
        every = step or dt.timedelta(seconds=spec.interval_s or 300)
        epoch = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
        n = -((epoch - start) // every)  # ceil: the first multiple at or after start
        t = epoch + n * every
        out = []
        while t < end:
            out.append(t)
            t += every
        return out
    trig = spec.trigger()
    out, prev = [], None
    t = trig.get_next_fire_time(None, start - dt.timedelta(microseconds=1))
    while t is not None and t < end:
        t = t.astimezone(dt.timezone.utc)
        if prev is None or t > prev:
            out.append(t)
        prev = t
        t = trig.get_next_fire_time(t, t + dt.timedelta(seconds=1))
    return [x for x in out if x >= start]


# -- the scratch state store ------------------------------------------------------------

class ScratchState:
    """A database on the state store's server for one backtest, dropped on exit."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.name = f"opsbench_backtest_{secrets.token_hex(4)}"
        self.url: str | None = None
        self._admin: Engine | None = None

    def __enter__(self) -> "ScratchState":
        real = db.resolve(db.Role.state, self.settings).dsn
        self._admin = sa.create_engine(db.sqlalchemy_url(real), isolation_level="AUTOCOMMIT",
                                       poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 10})
        try:
            with self._admin.connect() as conn:
                _drop_stale(conn)
                conn.exec_driver_sql(f'CREATE DATABASE "{self.name}"')
        except sa.exc.ProgrammingError as e:
            self._admin.dispose()
            if "permission denied" in str(e.orig):
                raise UserError("the backtest keeps its alerts in a scratch database on the state store's server, "
                                "and the state role may not create one: grant it CREATEDB, or point "
                                "OPSBENCH_STATE_URL at a server where it may") from None
            raise
        self.url = sa.make_url(real).set(database=self.name).render_as_string(hide_password=False)
        return self

    def __exit__(self, *exc) -> None:
        if self._admin is None:
            return
        try:
            with self._admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        except Exception as e:  # noqa: BLE001 - say so, never hide the run's own outcome
            log.warning("could not drop the backtest's scratch database %s: %s", self.name, redact(e))
        finally:
            self._admin.dispose()


def _drop_stale(conn: sa.Connection) -> None:
    """Scratch databases of backtests that were killed: dropped without FORCE, so one still in use by a
    backtest running elsewhere refuses and stays."""
    import queries

    for name in queries.load("backtest").scratch_databases.execute(conn).scalars().all():
        try:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            log.info("dropped the scratch database %s of an earlier backtest", name)
        except sa.exc.DBAPIError:
            pass  # in use: another backtest is running


# -- the replay ------------------------------------------------------------------------------

def _match(incident: dict[str, Any], rule: str, labels: dict[str, str]) -> bool:
    for want_rule, want_labels in INCIDENT_RULES.get(incident["kind"], ()):
        if rule == want_rule and all(labels.get(k) == str(incident.get(v)) for k, v in want_labels.items()):
            return True
    return False


def _explain(rule: str, labels: dict[str, str], at: dt.datetime, incidents: list[dict[str, Any]],
             window_end: dt.datetime, planted_checks: set[str]) -> str | None:
    for inc in incidents:
        start = dt.datetime.fromisoformat(inc["start"])
        end = dt.datetime.fromisoformat(inc["end"]) if inc.get("end") else window_end
        if start <= at <= end + AFTERGLOW and _match(inc, rule, labels):
            return inc["kind"]
    if rule.startswith("reconcile_") and rule.removeprefix("reconcile_") in planted_checks:
        return "reconciliation_faults"  # the planted ledger faults: today's ledger, seen from the first run on
    return None


def run(settings: Settings, *, days: float = 30, step: dt.timedelta | None = None, end: dt.datetime | None = None,
        manifest: dict[str, Any] | None = None, only: Iterable[str] | None = None,
        progress: Callable[[int, int], None] | None = None, through_store: bool = False) -> BacktestReport:
    """Replay the window [end - days, end) and return what would have been sent.

    The alert lifecycle runs in memory (`lifecycle.MemoryStore`), the same `evaluate` the alert manager
    runs on the state store. `through_store`: run it through the manager on a scratch state database
    instead, exactly as the daemon does (slower; the tests compare the two notice by notice)."""
    import time

    if not (0 < days <= 400):
        raise UserError(f"--days: expected a number of days in (0, 400], got {days:g}")
    if step is not None and not (dt.timedelta(seconds=30) <= step <= dt.timedelta(hours=6)):
        raise UserError("--step: expected a duration from 30s to 6h")
    if end is None:
        end = utc_now()
        if manifest and manifest.get("anchor"):
            end = min(end, dt.datetime.fromisoformat(manifest["anchor"]))
    end = end.astimezone(dt.timezone.utc)
    start = end - dt.timedelta(days=days)
    specs = replayed_jobs(settings, only)
    if not specs:
        raise UserError("the jobs file has no enabled metric or reconciliation job to replay")
    schedule = sorted((t, i) for i, spec in specs.items() for t in fire_times(spec, start, end, step))
    report = BacktestReport(start=start, end=end, step=step or dt.timedelta(
        seconds=min((s.interval_s for s in specs.values() if s.interval_s), default=300)))
    report.has_manifest = manifest is not None
    incidents = list((manifest or {}).get("incidents") or [])
    planted_checks = {c for c, n in ((manifest or {}).get("checks") or {}).items() if n}
    _backend_ready(settings)

    began = time.monotonic()
    funcs = {i: spec.resolve() for i, spec in specs.items()}
    quiet = logging.getLogger("opsbench.backtest.job")

    def replay(rt, record, run_settings: Settings) -> None:
        hand_off = Runner(run_settings, specs, runtime=rt)
        # the fast path answers each query for all moments at once; through the store, every query runs live
        served = loader.Served() if through_store else _prefetch(funcs, run_settings, rt, specs, schedule, quiet)
        for n, (at, job_id) in enumerate(schedule):
            with loader.serving(served):
                result, status, summary, error = _run_one(funcs[job_id], run_settings, rt, specs[job_id], at, quiet,
                                                          dry_run=not through_store)
            report.jobs[job_id] = report.jobs.get(job_id, 0) + 1
            if status == "failed":
                report.failed_runs[job_id] = report.failed_runs.get(job_id, 0) + 1
            handed = hand_off._result_for_alerts(specs[job_id], status, summary, error, result)
            labels_of = {f.key: dict(f.labels) for f in handed.findings}
            told = [t for t in record(job_id, handed, at) if t.notified]
            if told:
                idx = len(report.messages)
                report.messages.append(Message(
                    at=at, critical=any(t.severity == "critical" and t.notified in PAGE_KINDS for t in told),
                    keys=tuple(t.key for t in told)))
                for t in told:
                    labels = labels_of.get(t.key) or _labels_from_key(t.key)
                    report.notices.append(Notice(at, t.key, t.rule, t.severity, t.notified, idx,
                                                 _explain(t.rule, labels, at, incidents, end, planted_checks)))
            if progress is not None:
                progress(n + 1, len(schedule))

    if through_store:
        with ScratchState(settings) as scratch:
            run_settings = settings.model_copy(update={"state_url": scratch.url})
            rt = runtime.Runtime(run_settings)
            try:
                state = rt.engine("state")
                migrate(state)
                replay(rt, lambda job_id, handed, at: manager.record_result(state, job_id, handed, at, run_settings),
                       run_settings)
            finally:
                rt.dispose()
    else:
        store = lifecycle.MemoryStore()

        def in_memory(job_id: str, handed: JobResult, at: dt.datetime) -> list[lifecycle.Transition]:
            out = store.record(job_id, handed, at, settings)
            return [out.transitions[k] for k in sorted(out.transitions)] if out else []

        rt = runtime.Runtime(settings)
        try:
            replay(rt, in_memory, settings)
        finally:
            rt.dispose()
    report.seconds = time.monotonic() - began
    report.incidents = _incident_outcomes(report, incidents)
    return report


def _prefetch(funcs, settings: Settings, rt, specs: dict[str, JobSpec],
              schedule: list[tuple[dt.datetime, str]], logger) -> "loader.Served":
    """Each query a job asks with a `now`, fetched for every moment the job runs in one statement.

    A job's first run is made once to learn what it asks; every query that takes `now` is then run over
    all of the job's moments (`NamedQuery.over`) and the replay's calls are answered from those rows. A
    query asked only at some moments (a drill-down once something is found) is run when asked."""
    served = loader.Served()
    moments: dict[str, list[dt.datetime]] = {}
    for at, job_id in schedule:
        moments.setdefault(job_id, []).append(at)
    for job_id, ats in moments.items():
        probe = loader.Served()
        with loader.serving(probe):
            _run_one(funcs[job_id], settings, rt, specs[job_id], ats[0], logger, dry_run=True)
        shapes: dict[tuple, tuple[loader.NamedQuery, dict]] = {}
        for query, bound in probe.asked:
            if query.param("now") is None or "now" not in bound:
                continue
            rest = {k: v for k, v in bound.items() if k != "now"}
            key = served.key(query, rest)
            if key is not None:
                shapes.setdefault(key, (query, rest))
        for query, rest in shapes.values():
            with rt.engine("analytics").connect() as conn:
                for start in range(0, len(ats), PREFETCH_MOMENTS):
                    part = ats[start:start + PREFETCH_MOMENTS]
                    for at, frame in query.over(conn, part, **rest).items():
                        key = served.key(query, {**rest, "now": at})
                        served.answers[key] = frame
    return served


# moments per prefetch statement: a month of 5-minute steps in a few statements, memory bounded
PREFETCH_MOMENTS = 2000


def _run_one(func, settings: Settings, rt, spec: JobSpec, at: dt.datetime, logger, dry_run: bool = False) -> tuple[
        JobResult | None, str, str, str | None]:
    # dry_run: the job reads as usual but records nothing (its history would land in the real state store)
    ctx = JobContext(settings=settings, job_id=spec.id, run_id=f"backtest-{at:%Y%m%dT%H%M}", args=dict(spec.args),
                     clock=lambda: at, runtime=rt, logger=logger, dry_run=dry_run)
    try:
        result = func(ctx)
    except UserError:
        raise  # a jobs-file mistake: the backtest stops with its one line
    except Exception as e:  # noqa: BLE001 - a job may raise anything; the runner would record it as failed
        return None, "failed", f"raised {type(e).__name__}", redact(str(e)).splitlines()[0][:300] if str(e) else None
    if not isinstance(result, JobResult):
        return None, "failed", f"returned {type(result).__name__}, expected JobResult", None
    status = result.status if result.status in JOB_STATUSES else RunStatus.failed
    return result, status, result.summary, (redact(result.summary) if status == "failed" else None)


def _labels_from_key(key: str) -> dict[str, str]:
    if "{" not in key:
        return {}
    inner = key.split("{", 1)[1].rstrip("}")
    return dict(part.split("=", 1) for part in inner.split(",") if "=" in part)


def _incident_outcomes(report: BacktestReport, incidents: list[dict[str, Any]]) -> list[IncidentOutcome]:
    out = []
    for inc in incidents:
        start = dt.datetime.fromisoformat(inc["start"])
        end = dt.datetime.fromisoformat(inc["end"]) if inc.get("end") else None
        o = IncidentOutcome(kind=inc["kind"], start=start, end=end, in_window=report.start <= start < report.end)
        mine = [n for n in report.notices if n.explained_by == inc["kind"]]
        o.messages = len({n.message for n in mine})
        pages = [n for n in mine if n.kind in ("firing", manager.FLAPPING) and n.at >= start]
        if pages:
            o.first_page, o.first_page_rule = pages[0].at, pages[0].rule
        out.append(o)
    return out


def _backend_ready(settings: Settings) -> None:
    """The backend answers and has the tables the replayed jobs read (else one line, not a run of failures)."""
    import queries

    with db.analytics(settings).connect() as conn:
        missing = queries.load("backtest").missing_tables.execute(conn).scalars().all()
    if missing:
        raise UserError(f"the backend database has no table {missing[0]} (see queries/schema.sql); "
                        "nothing to replay")

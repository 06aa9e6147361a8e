"""Run one job once: context, timeout, job history, alert hand-off, Sentry.

A run goes through these steps whatever the job does:

1. If the same job is still running (even a run abandoned after its timeout),
   this run is recorded as `skipped` and nothing starts.
2. A `running` row goes into `opsbench.job_runs`; Sentry gets an
   `in_progress` check-in with the job's schedule as monitor config. A
   daemon's runner (`fenced=True`) inserts it only while the leader term is
   its own and starts nothing otherwise (a deposed leader that has not
   noticed yet). Manual rows left `running` by a dead `opsbench run` are
   closed first, once past their job's timeout plus a grace period.
3. The job runs in its own worker thread. The caller waits at most the job's
   timeout. A run past it is marked `timeout`; Python cannot kill a thread, so
   the stuck one is abandoned (logged) and blocks further runs of that job only.
4. An exception becomes status `failed` and exactly one Sentry event tagged
   with the job id. A failed run adds a `job_failed` finding, a timed-out run
   a `job_timeout` finding (label job=<id>). A run that failed because a
   database could not be reached (OperationalError on connect or a dropped
   connection) makes its `job_failed` require `database_unreachable`, so the
   alert manager holds it back behind the root cause instead of paging once
   per job.
5. The result goes to the alert manager (`ops.alerting.bridge`), the row is
   closed, and Sentry gets the closing `ok` / `error` check-in.

Nothing here raises into the scheduler: a job can only fail itself.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import socket
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from sqlalchemy.engine import Engine

import queries
from ops.alerting import bridge as alert_bridge
from ops.alerting import rebind
from ops.contract import Finding, JobContext, JobResult, RunStatus, Severity, utc_now
from ops.core import sentry
from ops.core.errors import OpsbenchError
from ops.core.redact import redact
from ops.core.settings import Settings
from ops.daemon.jobspec import DEFAULT_TIMEOUT_S, JobSpec
from ops.data.runtime import Runtime, for_settings

log = logging.getLogger("opsbench.runner")

RUNNER_RULES = frozenset({"job_failed", "job_timeout"})
# what a job may report; anything else is recorded as failed (timeout is the runner's own verdict)
JOB_STATUSES = (RunStatus.ok, RunStatus.failed, RunStatus.skipped)
# the probe's root-cause rule (jobs.probes.DATABASE_UNREACHABLE; not imported, jobs may be broken)
DATABASE_UNREACHABLE = "database_unreachable"
# a manual run's row still `running` this long after its job's timeout belongs to a dead process
MANUAL_STALE_GRACE_S = 60.0

AlertSink = Callable[[str, JobResult, dt.datetime], Any]


def _sql():
    return queries.load("state/daemon")


def manual_identity() -> str:
    return f"manual:{socket.gethostname()}:{os.getpid()}"


def database_unreachable(err: BaseException | None) -> bool:
    """Did this exception come from a database that could not be reached (or dropped the connection)?

    True for sqlalchemy / psycopg OperationalErrors without an SQLSTATE (connection refused, connect
    timeout, name resolution, server closed the connection), in SQLSTATE class 08 (connection
    exception), 57P (admin / crash shutdown, cannot connect now) or 53300 (too many connections),
    and for any DBAPIError SQLAlchemy recognised as a disconnect. A statement or lock timeout is the
    database answering: False.
    """
    import psycopg
    import sqlalchemy.exc as sa_exc

    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, sa_exc.DBAPIError):
            if err.connection_invalidated:
                return True
            if isinstance(err, sa_exc.OperationalError) and not isinstance(err.orig, psycopg.Error):
                return True  # another driver: trust the class
            if err.orig is not None:
                err = err.orig
                continue
        if isinstance(err, psycopg.OperationalError):
            state = err.sqlstate or ""
            return not state or state.startswith(("08", "57P")) or state == "53300"
        err = err.__cause__ or err.__context__
    return False


@dataclass
class RunRecord:
    run_id: str
    job: str
    trigger: str
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime
    duration_s: float
    summary: str = ""
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    dry_run: bool = False
    not_run: list[str] = field(default_factory=list)


@dataclass
class _Active:
    run_id: str
    job: str
    started_at: dt.datetime
    started_mono: float
    trigger: str
    dry_run: bool
    thread: threading.Thread | None = None
    abandoned: bool = False   # timed out; the thread may still be going
    done: bool = False        # the job function has returned or raised


class Runner:
    """Runs jobs and records them. Thread-safe; one instance per process."""

    def __init__(self, settings: Settings, specs: Mapping[str, JobSpec], *, state_engine: Engine | None = None,
                 clock: Callable[[], dt.datetime] = utc_now, identity: str | None = None,
                 gate: Callable[[], bool] | None = None, alert_sink: AlertSink | None = None,
                 fenced: bool = False, runtime: Runtime | None = None):
        self.settings = settings
        # the engines jobs get through their context (read-only for a dry run)
        self.runtime = runtime or for_settings(settings)
        self.specs = dict(specs)
        self.clock = clock
        self.identity = identity or manual_identity()
        self._engine = state_engine
        self._gate = gate
        self._alert_sink = alert_sink
        self._fenced = fenced
        self._active: dict[str, _Active] = {}
        self._skipped_for: dict[str, str] = {}   # job -> why its last run skipped (said once, not every run)
        self._cond = threading.Condition()
        # told when check_backend switched the state to another backend (the daemon rebuilds rollups at once)
        self.on_backend_switch: Callable[[rebind.Switch], None] | None = None

    # -- plumbing --------------------------------------------------------------
    @property
    def state_engine(self) -> Engine:
        if self._engine is None:
            self._engine = self.runtime.engine("state")
        return self._engine

    def _write(self, what: str, statement: str, **params: Any) -> Any:
        """Run one state statement; log (never raise) when the state DB is unavailable."""
        try:
            with self.state_engine.begin() as conn:
                result = getattr(_sql(), statement).execute(conn, **params)
                return result.fetchall() if result.returns_rows else None
        except Exception as e:
            log.error("could not record %s: %s: %s", what, type(e).__name__, redact(e),
                      extra={"job": params.get("job"), "run_id": params.get("run_id")})
            sentry.capture_exception(e, tags={"component": "job_runs"})
            return None

    def _hand_to_alerts(self, source: str, result: JobResult, now: dt.datetime) -> None:
        try:
            if self._alert_sink is not None:
                self._alert_sink(source, result, now)
            else:
                alert_bridge.record_result(self.state_engine, source, result, now, self.settings)
        except Exception as e:  # the bridge guards itself; this guards a custom sink
            log.error("alert hand-off failed: %s", redact(e), extra={"job": source})
            sentry.capture_exception(e, tags={"component": "alerts", "job": source})

    def check_backend(self) -> "rebind.Switch | None":
        """Bind the state store to the live backend; on a change close its alerts, forget its rollups
        (ops/alerting/rebind.py). Never raises: an unreachable database is the probes' business."""
        try:
            switch = rebind.ensure(self.runtime.engine("analytics"), self.state_engine, self.clock())
        except Exception as e:
            log.warning("backend identity not checked: %s: %s", type(e).__name__, redact(e))
            return None
        if switch is not None:
            log.warning("%s", switch.text)
        if switch is not None and self.on_backend_switch is not None:
            try:
                self.on_backend_switch(switch)
            except Exception as e:
                log.error("after the backend switch: %s", redact(e))
        return switch

    # -- state the daemon asks about -------------------------------------------
    def running_jobs(self) -> list[str]:
        with self._cond:
            return sorted(self._active)

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no run is in progress (abandoned ones excepted). True if idle."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while any(not a.abandoned for a in self._active.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.2))
        return True

    def abandon_in_flight(self, reason: str) -> list[str]:
        """At shutdown, after the grace period: close the rows of runs still going as failed."""
        with self._cond:
            pending = [a for a in self._active.values() if not a.abandoned]
            for a in pending:
                a.abandoned = True
        for a in pending:
            duration = time.monotonic() - a.started_mono
            if not a.dry_run:
                self._write("interrupted run", "finish_run", run_id=a.run_id, status="failed",
                            finished_at=a.started_at + dt.timedelta(seconds=duration), duration_s=duration,
                            summary="interrupted", error=reason, metrics="{}", findings=0)
            log.warning("run abandoned at shutdown: %s", reason, extra={"job": a.job, "run_id": a.run_id})
        return [a.job for a in pending]

    # -- running ---------------------------------------------------------------
    def record_skipped(self, job_id: str, reason: str, trigger: str = "schedule") -> RunRecord:
        now = self.clock()
        run_id = str(uuid.uuid4())
        self._write("skipped run", "insert_skipped", run_id=run_id, job=job_id, trigger=trigger, at=now,
                    summary=reason, leader=self.identity)
        log.warning("run skipped: %s", reason, extra={"job": job_id, "run_id": run_id, "status": "skipped"})
        return RunRecord(run_id, job_id, trigger, "skipped", now, now, 0.0, reason)

    def run(self, job_id: str, *, trigger: str = "schedule", dry_run: bool = False) -> RunRecord | None:
        """Run `job_id` now and wait for it (at most its timeout). None if the gate is closed."""
        spec = self.specs[job_id]
        if self._gate is not None and not self._gate():
            log.info("not the leader: run not started", extra={"job": job_id})
            return None
        with self._cond:
            current = self._active.get(job_id)
            if current is None:
                active = _Active(str(uuid.uuid4()), job_id, self.clock(), time.monotonic(), trigger, dry_run)
                self._active[job_id] = active
        if current is not None:
            state = "abandoned after its timeout and still" if current.abandoned else "still"
            return self.record_skipped(
                job_id, f"previous run {current.run_id[:8]} {state} running since {current.started_at:%H:%M:%S}",
                trigger)
        try:
            if not dry_run and self.check_backend() is not None:
                # the run that noticed the switch is the new backend's: date it after the switch
                active.started_at = self.clock()
            if not dry_run and not self._start_row(spec, active):
                return None
            return self._run(spec, active)
        finally:
            with self._cond:
                if not active.abandoned and self._active.get(job_id) is active:
                    del self._active[job_id]
                self._cond.notify_all()

    def close_stale_manual_runs(self, grace_s: float = MANUAL_STALE_GRACE_S) -> list[Any]:
        """Close rows of `opsbench run` processes that died mid-run (still `running` past timeout + grace)."""
        rows = self._write("stale manual runs", "close_stale_manual",
                           timeouts=json.dumps({k: v.timeout_s for k, v in self.specs.items()}),
                           default_s=DEFAULT_TIMEOUT_S, grace_s=grace_s, at=self.clock()) or []
        for row in rows:
            log.warning("closed a manual run left running by %s (the process died)", row.leader,
                        extra={"job": row.job, "run_id": str(row.run_id)})
        return rows

    def _start_row(self, spec: JobSpec, active: _Active) -> bool:
        """Insert the `running` row. False (start nothing) when a daemon's leader term is not its own."""
        self.close_stale_manual_runs()
        params = dict(run_id=active.run_id, job=spec.id, trigger=active.trigger, started_at=active.started_at,
                      leader=self.identity)
        if not self._fenced:
            self._write("run start", "insert_run", **params)
            return True
        rows = self._write("run start", "insert_run_as_leader", **params)
        if rows:
            return True
        log.error("run not started: %s", "this daemon no longer holds the leader term" if rows is not None
                  else "the state database did not confirm the leader term",
                  extra={"job": spec.id, "run_id": active.run_id})
        return False

    def _run(self, spec: JobSpec, active: _Active) -> RunRecord:
        run_id, job_id, dry_run = active.run_id, spec.id, active.dry_run
        extra = {"job": job_id, "run_id": run_id}
        check_in_id = None if dry_run else sentry.checkin(spec.monitor_slug, "in_progress",
                                                         monitor_config=spec.monitor_config())
        log.info("job started", extra={**extra, "trigger": active.trigger, "dry_run": dry_run})

        ctx = JobContext(settings=self.settings, job_id=job_id, run_id=run_id, args=dict(spec.args),
                         clock=self.clock, dry_run=dry_run, runtime=self.runtime,
                         logger=logging.LoggerAdapter(logging.getLogger(f"opsbench.job.{job_id}"), extra))
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["result"] = spec.resolve()(ctx)
            except BaseException as e:  # noqa: BLE001 - a job may raise anything; it must not escape
                outcome["error"] = e
                # captured here, in the job's thread, so the event carries the job's own breadcrumbs
                sentry.capture_exception(e, tags={"job": job_id, "run_id": run_id})
            finally:
                # an abandoned (timed-out) run frees its job only when it really ends
                with self._cond:
                    active.done = True
                    if active.abandoned and self._active.get(job_id) is active:
                        del self._active[job_id]
                        log.warning("abandoned run finally ended after %.1fs",
                                    time.monotonic() - active.started_mono,
                                    extra={**extra, "duration": round(time.monotonic() - active.started_mono, 3)})
                    self._cond.notify_all()

        thread = threading.Thread(target=work, name=f"job-{job_id}", daemon=True)
        active.thread = thread
        thread.start()
        thread.join(spec.timeout_s)
        duration = time.monotonic() - active.started_mono
        finished_at = active.started_at + dt.timedelta(seconds=duration)

        error: str | None = None
        job_result: JobResult | None = None
        with self._cond:
            timed_out = not active.done
            if timed_out:
                active.abandoned = True
        if timed_out:
            status = "timeout"
            summary = f"still running after its {spec.timeout_s:g}s timeout; thread abandoned"
            log.error("job timed out; its thread is abandoned and further runs are skipped until it ends",
                      extra={**extra, "duration": round(duration, 3), "status": status})
        elif "error" in outcome:
            err = outcome["error"]
            status = "failed"
            error = _error_line(err)
            # an error opsbench raises on purpose says what to do (row level security hides a table, say):
            # that is the page's text; anything else is named by its class, the details carry the message
            said = redact(str(err)).strip().splitlines() if isinstance(err, OpsbenchError) else []
            summary = said[0] if said else f"raised {type(err).__name__}"
            log.error("job raised %s", type(err).__name__, exc_info=err,
                      extra={**extra, "duration": round(duration, 3), "status": status})
        else:
            job_result = outcome.get("result")
            if not isinstance(job_result, JobResult):
                status, summary = "failed", f"returned {type(job_result).__name__}, expected JobResult"
                error = summary
                job_result = None
            else:
                status = job_result.status if job_result.status in JOB_STATUSES else RunStatus.failed
                summary = job_result.summary
                if status == "failed":
                    error = redact(job_result.summary) or "the job reported failure"

        unreachable = status == "failed" and database_unreachable(outcome.get("error"))
        handed = self._result_for_alerts(spec, status, summary, error, job_result, unreachable)
        record = RunRecord(run_id, job_id, active.trigger, status, active.started_at, finished_at, duration,
                           redact(summary), error, dict(job_result.metrics) if job_result else {},
                           list(handed.findings), dry_run, list(job_result.not_run) if job_result else [])
        if not dry_run:
            self._hand_to_alerts(job_id, handed, finished_at)
            self._write("run end", "finish_run", run_id=run_id, status=status, finished_at=finished_at,
                        duration_s=duration, summary=record.summary, error=error,
                        metrics=_metrics_json(record.metrics), findings=len(handed.findings))
            sentry.checkin(spec.monitor_slug, "ok" if status in ("ok", "skipped") else "error",
                           check_in_id=check_in_id, duration_s=duration, monitor_config=spec.monitor_config())
        if not timed_out:
            level = logging.INFO if status in ("ok", "skipped") else logging.WARNING
            # a job skipped for the same reason as last time (http_probes with no targets, every minute)
            # is said once at INFO; the repeats go to DEBUG until the reason changes or a run is not skipped
            if status == "skipped":
                if self._skipped_for.get(job_id) == record.summary:
                    level = logging.DEBUG
                self._skipped_for[job_id] = record.summary
            else:
                self._skipped_for.pop(job_id, None)
            log.log(level, "job finished", extra={**extra, "duration": round(duration, 3), "status": status,
                                                  "findings": len(handed.findings), "summary": record.summary})
        return record

    def _result_for_alerts(self, spec: JobSpec, status: str, summary: str, error: str | None,
                           job_result: JobResult | None, unreachable: bool = False) -> JobResult:
        """The job's own findings plus the runner's job_failed / job_timeout.

        A failure caused by an unreachable database requires `database_unreachable`: while the
        probe's root-cause alert is pending or firing, the alert manager holds it back.
        """
        findings = list(job_result.findings) if job_result else []
        rules = set(job_result.rules) if job_result else set()
        rules |= {f.rule for f in findings} | RUNNER_RULES
        labels = {"job": spec.id}
        command = f"opsbench run {spec.id}"
        if status == "timeout":
            findings.append(Finding("job_timeout", Severity.warning,
                                    f"job {spec.id} ran past its {spec.timeout_s:g}s timeout",
                                    labels=labels, details=summary, command=command))
        elif status == "failed":
            findings.append(Finding("job_failed", Severity.warning, f"job {spec.id} failed: {summary}",
                                    labels=labels, details=error or "", command=command,
                                    requires=(DATABASE_UNREACHABLE,) if unreachable else ()))
        return JobResult(status=status, summary=summary, metrics=dict(job_result.metrics) if job_result else {},
                         findings=findings, rules=rules)


def _metrics_json(metrics: dict[str, Any]) -> str:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v

    return json.dumps({str(k): clean(v) for k, v in metrics.items()}, default=str)


def _error_line(err: BaseException) -> str:
    """The run's error text: a database error as one line (the driver's first line, not SQLAlchemy's
    wrapper with its statement and background link), anything else as Python prints it."""
    module = type(err).__module__ or ""
    if module.startswith(("sqlalchemy", "psycopg")):
        cause = getattr(err, "orig", None) or err
        first = (redact(cause).strip().splitlines() or [""])[0]
        return f"database error: {type(cause).__name__}: {first}"
    return redact("".join(traceback.format_exception_only(type(err), err)).strip())

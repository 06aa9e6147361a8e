"""The daemon: APScheduler's BlockingScheduler, led by the leader lock.

Life of a daemon process:

1. Start the scheduler with no jobs and the leader elector (ops.daemon.leader).
2. On winning the lead, fence first: claim the leader term (from then on a
   deposed leader's runner cannot insert a run row, so it starts nothing);
   close runs left `running` by instances that are gone (stopped, or no
   heartbeat for `fence_grace_s`), and manual runs of dead `opsbench run`
   processes; wait while a live instance (a leader that lost its lock
   connection mid-run) still has a run going, at most until that run's job
   timeout plus `fence_grace_s`, then mark it `timeout`. Only then add every
   enabled job (coalesce on, one instance at a time), and start once, now,
   each job that missed a scheduled slot while no daemon led (catch-up, per
   job; a backlog of missed slots coalesces into that one run), and the probes
   and metric probes (RUN_AT_START), so a fresh leader knows the state of
   things at once rather than a whole interval later. So at no
   instant do two daemons run jobs, and the old run records its own outcome.
3. On losing the lead: remove every job at once; the runner's gate refuses
   anything already queued, and the runner's term check refuses a run the
   gate let through just before the loss was noticed.
4. On SIGTERM / SIGINT: stop scheduling, wait for running jobs up to the
   grace period, drain the outbox, give up the lock, flush Sentry, exit 0.

APScheduler runs on the wall clock; the catch-up decision takes an
injectable clock (`missed_slot`), so tests never wait for a schedule.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading
from datetime import timedelta
from typing import Callable, Iterable, Mapping

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_SCHEDULER_STARTED,
    JobExecutionEvent,
    JobSubmissionEvent,
    SchedulerEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from sqlalchemy.engine import Engine

import queries
from ops.alerting import bridge as alert_bridge
from ops.contract import utc_now
from ops.core import backoff, sentry
from ops.core.redact import redact
from ops.core.settings import Settings
from ops.daemon import orphan_alerts
from ops.daemon.jobspec import DEFAULT_TIMEOUT_S, JobSpec
from ops.daemon.leader import LeaderElector, new_identity

LEADERSHIP_RULE = "daemon_leadership"
from ops.daemon.runner import Runner

log = logging.getLogger("opsbench.daemon")

# Jobs (by callable) that run once as soon as a daemon leads, then on their schedule:
# the health probes and metric probes, whose answer is what a restart needs first.
RUN_AT_START = frozenset({"jobs.probes:http_probes", "jobs.probes:postgres", "jobs.metrics:metric_probes"})
# run at once after the state switched to another backend (its rollups were forgotten)
ROLLUPS_CALLABLE = "jobs.rollups:refresh"

DEFAULT_SHUTDOWN_GRACE_S = 30.0
DRAIN_AT_EXIT_TIMEOUT_S = 15.0
# a job without catch-up still runs if the process was briefly stalled
NO_CATCH_UP_GRACE_S = 30
# an instance whose heartbeat (written every poll) is older than this is gone
DEFAULT_FENCE_GRACE_S = 4.0
FENCE_POLL_S = 0.2


def missed_slot(spec: JobSpec, last_started: dt.datetime | None, now: dt.datetime) -> bool:
    """Did `spec` miss a scheduled run since `last_started`? (Catch-up is off or never ran: no.)

    For cron jobs: the first fire time after the last start is already past.
    For interval jobs: a whole interval has passed since the last start.
    However many slots were missed, the answer is one run.
    """
    if not spec.catch_up or last_started is None:
        return False
    if spec.cron is not None:
        # +1 s: a run that started exactly on its slot does not count that slot as missed
        upcoming = spec.trigger().get_next_fire_time(None, last_started + timedelta(seconds=1))
        return upcoming is not None and upcoming <= now
    return last_started + timedelta(seconds=spec.interval_s or 0) <= now


def jobs_to_catch_up(specs: Iterable[JobSpec], last_started: Mapping[str, dt.datetime], now: dt.datetime) -> list[str]:
    return [s.id for s in specs if missed_slot(s, last_started.get(s.id), now)]


def last_started(engine: Engine) -> dict[str, dt.datetime]:
    with engine.connect() as conn:
        rows = queries.load("state/daemon").last_started.execute(conn).fetchall()
    return {r.job: r.started_at for r in rows}


class Daemon:
    """One daemon process. `run()` blocks until `stop()`; returns the exit code."""

    def __init__(self, settings: Settings, specs: Mapping[str, JobSpec], *, state_engine: Engine | None = None,
                 clock: Callable[[], dt.datetime] = utc_now, identity: str | None = None,
                 poll_s: float = 1.0, lease_s: float = 5.0, shutdown_grace_s: float = DEFAULT_SHUTDOWN_GRACE_S,
                 fence_grace_s: float | None = None,
                 load_specs: Callable[[], Mapping[str, JobSpec]] | None = None):
        from ops.data import db

        self.load_specs = load_specs   # SIGHUP re-reads the jobs file through it (None: SIGHUP only logs)
        self._rebuild_pending = False  # a backend switch before scheduling: the rollups job runs at start

        self.settings = settings
        self.all_specs = dict(specs)
        self.specs = {k: v for k, v in specs.items() if v.enabled}
        self.clock = clock
        self.identity = identity or new_identity()
        self.shutdown_grace_s = shutdown_grace_s
        # heartbeats come every poll; a few missed ones, and never less than DEFAULT_FENCE_GRACE_S
        self.fence_grace_s = fence_grace_s if fence_grace_s is not None else max(DEFAULT_FENCE_GRACE_S, 4 * poll_s)
        self.state_engine = state_engine or db.engine("state", settings)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._catch_up: set[str] = set()
        self._was_leader = False
        self._lead_lock = threading.Lock()   # orders "add the jobs" against "remove them" (lost lead)
        self._term = 0                       # bumped at each election and loss; a stale fence gives up
        self._fenced = threading.Event()     # set once this leader may run jobs
        self.runner = Runner(settings, self.specs, state_engine=self.state_engine, clock=clock,
                             identity=self.identity, gate=self.may_run, fenced=True)
        self.elector = LeaderElector(
            self.state_engine.url, identity=self.identity, environment=settings.environment,
            on_elected=self._on_elected, on_lost=self._on_lost, poll_s=poll_s, lease_s=lease_s, clock=clock)
        self.scheduler = BlockingScheduler(
            timezone=settings.tz,
            executors={"default": ThreadPoolExecutor(max_workers=len(self.specs) + 2)},
            job_defaults={"coalesce": True, "max_instances": 1},
        )
        self.scheduler.add_listener(self._on_started, EVENT_SCHEDULER_STARTED)
        self.scheduler.add_listener(self._on_job_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED | EVENT_JOB_ERROR)

    # -- the gate ------------------------------------------------------------------
    def may_run(self) -> bool:
        return self.elector.is_leader() and self._fenced.is_set() and not self._stopping.is_set()

    # -- lifecycle -----------------------------------------------------------------
    def run(self) -> int:
        if not self._wait_for_state_db():
            return 0  # stopped before the state database came back
        self._refuse_pooled_state_url()
        log.info("daemon starting: %d job(s): %s", len(self.specs), ", ".join(self.specs) or "none",
                 extra={"instance": self.identity})
        self.scheduler.start()  # blocks until stop() shuts the scheduler down
        return self._finish()

    def _wait_for_state_db(self) -> bool:
        """Apply migrations, retrying while the state database is down: the daemon waits, never dies."""
        from ops.data.state import migrate

        attempt = 0
        while not self._stopping.is_set():
            try:
                migrate(self.state_engine)
                return True
            except Exception as e:
                delay = backoff.delay(attempt, 1.0, 30.0, jitter=(1.0, 1.0))  # 1, 2, 4 ... 30 s, no jitter
                log.error("state database unavailable (%s); retrying in %gs",
                          redact(e).splitlines()[0], delay, extra={"instance": self.identity})
                self._stopping.wait(delay)
                attempt += 1
        return False

    def _refuse_pooled_state_url(self) -> None:
        """Raise UserError (one line, with the fix) when the state URL does not keep one server session."""
        from ops.core.errors import UserError
        from ops.data import session

        problem = session.session_problem(self.state_engine.url)
        if problem is not None:
            raise UserError(session.needs_session_fix(
                "OPSBENCH_STATE_URL", self.state_engine.url.render_as_string(hide_password=True), problem))

    def stop(self, reason: str = "stop requested") -> None:
        """Stop scheduling now; `run()` then waits for running jobs and returns. Safe from any thread."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        log.info("daemon stopping: %s", reason, extra={"instance": self.identity})
        try:
            self.scheduler.remove_all_jobs()
            self.scheduler.shutdown(wait=False)
        except Exception as e:  # not started yet / already stopped
            log.debug("scheduler shutdown: %s", e)

    def install_signal_handlers(self) -> None:
        """SIGTERM / SIGINT stop the daemon cleanly (main thread only)."""
        def handler(signum, frame):
            if self._stopping.is_set():
                # a second Ctrl-C / SIGTERM: stop waiting; the next leader closes our open runs
                log.warning("second %s: exiting without waiting for running jobs", signal.Signals(signum).name)
                logging.shutdown()
                os._exit(1)
            # stop() takes scheduler locks the interrupted main thread may hold: do it elsewhere
            threading.Thread(target=self.stop, args=(signal.Signals(signum).name,), daemon=True).start()

        def hangup(signum, frame):
            # `systemctl reload` (ExecReload= sends SIGHUP): the jobs file (and OPSBENCH_HEALTH_URLS) again
            if self.load_specs is None:
                threading.Thread(target=log.warning, daemon=True, args=(
                    "SIGHUP: nothing is reloaded in place; restart the daemon to apply new settings or jobs",)).start()
                return
            threading.Thread(target=self.reload, name="reload", daemon=True).start()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGHUP, hangup)

    def _finish(self) -> int:
        idle = self.runner.wait_idle(self.shutdown_grace_s)
        if not idle:
            left = self.runner.abandon_in_flight(
                f"interrupted: the daemon stopped and the run was still going after the "
                f"{self.shutdown_grace_s:g}s shutdown grace period")
            log.warning("stopping with %d run(s) still going: %s", len(left), ", ".join(left))
        if self._was_leader:
            self._drain_outbox()
        self.elector.stop()
        log.info("daemon stopped", extra={"instance": self.identity})
        sentry.flush()
        self._stopped.set()
        return 0

    def _drain_outbox(self) -> None:
        """Last delivery attempt before exit; bounded, since Telegram may be unreachable."""
        done = threading.Event()

        def drain() -> None:
            sent = alert_bridge.drain(self.settings, self.state_engine)
            if sent:
                log.info("outbox drained at shutdown: %d message(s) sent", sent)
            done.set()

        threading.Thread(target=drain, name="drain-at-exit", daemon=True).start()
        if not done.wait(DRAIN_AT_EXIT_TIMEOUT_S):
            log.warning("outbox drain at shutdown still running after %ss; the rest waits for the next start",
                        DRAIN_AT_EXIT_TIMEOUT_S)

    # -- scheduler and elector callbacks ---------------------------------------------
    def _on_started(self, event: SchedulerEvent) -> None:
        if self._stopping.is_set():  # stop() came while the scheduler was starting
            threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": False}, daemon=True).start()
            return
        self.elector.start()

    def _on_elected(self) -> None:
        """In the elector's thread: claim the term now, fence and schedule in a thread of its own."""
        if self._stopping.is_set():
            return
        self._was_leader = True
        with self.state_engine.begin() as conn:  # raises -> the elector gives the lead up again
            term = queries.load("state/daemon").claim_term.execute(
                conn, instance=self.identity, now=self.clock()).scalar_one()
        with self._lead_lock:
            self._term += 1
            mine = self._term
        log.info("leader term %d claimed; checking for runs still going elsewhere", term,
                 extra={"instance": self.identity})
        threading.Thread(target=self._fence_then_schedule, args=(mine,), name="leader-fence", daemon=True).start()

    def _still_leading(self, mine: int) -> bool:
        return mine == self._term and self.elector.is_leader() and not self._stopping.is_set()

    def fence_once(self) -> list:
        """Close runs of gone instances (and dead manual runs), time out overdue runs of live ones.

        Returns the runs still going under live instances, which this leader must wait for.
        """
        sql = queries.load("state/daemon")
        now = self.clock()
        with self.state_engine.begin() as conn:
            closed = sql.interrupt_runs.execute(conn, leader=self.identity, at=now,
                                                grace_s=self.fence_grace_s).fetchall()
            going = sql.foreign_runs.execute(conn, leader=self.identity).fetchall()
        for row in closed:
            log.warning("closed a run left running by %s (that daemon is gone)", row.leader,
                        extra={"job": row.job, "run_id": str(row.run_id)})
        self.runner.close_stale_manual_runs()
        waiting = []
        for row in going:
            spec = self.specs.get(row.job)
            timeout_s = spec.timeout_s if spec is not None else DEFAULT_TIMEOUT_S
            if now < row.started_at + timedelta(seconds=timeout_s + self.fence_grace_s):
                waiting.append(row)
                continue
            with self.state_engine.begin() as conn:
                sql.expire_run.execute(
                    conn, run_id=row.run_id, status="timeout", at=now,
                    summary=f"still running after its {timeout_s:g}s timeout under a deposed leader",
                    error=f"timeout: the daemon {row.leader} lost the lead while this run was going and had "
                          f"not closed it {self.fence_grace_s:g}s after its {timeout_s:g}s timeout")
            log.warning("a run of %s under the deposed leader %s is past its timeout: marked timeout",
                        row.job, row.leader, extra={"job": row.job, "run_id": str(row.run_id)})
        return waiting

    def _fence_then_schedule(self, mine: int) -> None:
        logged: set[str] = set()
        while self._still_leading(mine):
            try:
                waiting = self.fence_once()
            except Exception as e:
                log.error("fencing check failed (%s); retrying", redact(e).splitlines()[0],
                          extra={"instance": self.identity})
                self._stopping.wait(1.0)
                continue
            if not waiting:
                break
            for row in waiting:
                if str(row.run_id) not in logged:
                    logged.add(str(row.run_id))
                    log.warning("not running jobs yet: %s still runs %s (started %s) after losing the lead",
                                row.leader, row.job, f"{row.started_at:%H:%M:%S}",
                                extra={"job": row.job, "run_id": str(row.run_id)})
            self._stopping.wait(FENCE_POLL_S)
        with self._lead_lock:
            if not self._still_leading(mine):
                return
            self._bind_and_close()
            # open the fence before scheduling: a catch-up or start-up run is due at once, and
            # APScheduler's thread may fire it before the next line here; behind a closed fence it
            # was dropped as "not the leader" and waited a whole interval
            self._fenced.set()
            self._schedule_all()
        self._page_leadership(None)  # leading again: resolves a leadership alert of an earlier loss
        self._start_telegram_poller(mine)

    def _start_telegram_poller(self, mine: int) -> None:
        """Buttons and commands: the leader long-polls getUpdates (ops/daemon/telegram_poller.py)."""
        if self.settings.telegram_bot_token is None or not self.settings.telegram_poll:
            return
        from ops.daemon.telegram_poller import TelegramPoller

        def run_job(job_id: str) -> None:
            if job_id not in self.specs:
                log.warning("Telegram asked for %s, which the jobs file does not enable", job_id)
                return
            self.runner.run(job_id, trigger="manual")
            alert_bridge.drain(self.settings, self.state_engine, budget_s=30.0)

        poller = TelegramPoller(self.settings, self.state_engine,
                                leading=lambda: self._still_leading(mine) and self._fenced.is_set(),
                                run_job=run_job, clock=self.clock, wait=self._stopping.wait)
        threading.Thread(target=poller.run, name="telegram-updates", daemon=True).start()

    def reload(self) -> bool:
        """Re-read the jobs file (SIGHUP): reschedule what changed, drop what is gone, close the alerts of
        removed checks. A bad file changes nothing (logged). True when the new jobs are in place."""
        if self.load_specs is None:
            return False
        try:
            specs = dict(self.load_specs())
        except Exception as e:
            log.error("SIGHUP: jobs file not reloaded, the running jobs stay as they are: %s", redact(e))
            return False
        with self._lead_lock:
            old = self.specs
            self.all_specs = specs
            self.specs = {k: v for k, v in specs.items() if v.enabled}
            self.runner.specs = dict(self.specs)
            if self._fenced.is_set():
                for job_id in set(old) - set(self.specs):
                    try:
                        self.scheduler.remove_job(job_id)
                    except Exception as e:
                        log.debug("remove %s: %s", job_id, e)
                for spec in self.specs.values():
                    if old.get(spec.id) != spec:
                        self.scheduler.add_job(
                            self._fire, trigger=spec.trigger(), args=[spec.id], id=spec.id, name=spec.id,
                            replace_existing=True, coalesce=True, max_instances=1,
                            misfire_grace_time=None if spec.catch_up else NO_CATCH_UP_GRACE_S)
        closed: list[str] = []
        if self._fenced.is_set():
            try:
                closed = orphan_alerts.close_removed(self.state_engine, self.all_specs, self.clock())
            except Exception as e:
                log.error("could not close the alerts of removed checks: %s", redact(e))
        log.info("SIGHUP: jobs file reloaded: %d job(s); %d alert(s) of removed checks closed",
                 len(self.specs), len(closed))
        return True

    def _bind_and_close(self) -> None:
        """Before scheduling: bind the state to the live backend (ops/alerting/rebind.py) and close
        the alerts whose rule the jobs file no longer has (ops/daemon/orphan_alerts.py). Never raises."""
        self.runner.on_backend_switch = self._rebuild_rollups
        self.runner.check_backend()
        try:
            orphan_alerts.close_removed(self.state_engine, self.all_specs, self.clock())
        except Exception as e:
            log.error("could not close the alerts of removed checks: %s", redact(e))

    def _schedule_all(self) -> None:
        now = self.clock()
        due = set(jobs_to_catch_up(self.specs.values(), last_started(self.state_engine), now))
        wall_now = dt.datetime.now(self.settings.tz)  # APScheduler keeps the wall clock: "run now" in its terms
        at_start = []
        for spec in self.specs.values():
            options = {}
            if spec.id in due:
                self._catch_up.add(spec.id)
                options["next_run_time"] = wall_now
            elif spec.callable in RUN_AT_START or (self._rebuild_pending and spec.callable == ROLLUPS_CALLABLE):
                at_start.append(spec.id)
                options["next_run_time"] = wall_now
            self.scheduler.add_job(
                self._fire, trigger=spec.trigger(), args=[spec.id], id=spec.id, name=spec.id,
                replace_existing=True, coalesce=True, max_instances=1,
                misfire_grace_time=None if spec.catch_up else NO_CATCH_UP_GRACE_S, **options)
        self._rebuild_pending = False
        if due:
            log.info("catching up on missed runs: %s", ", ".join(sorted(due)))
        if at_start:
            log.info("first run now, then on schedule: %s", ", ".join(sorted(at_start)))

    def _rebuild_rollups(self, switch) -> None:
        """The state now describes another backend and its rollups are gone: rebuild them now, not at the
        next hourly run (readers read the raw tables meanwhile). At start, _schedule_all does it."""
        self._rebuild_pending = True
        if not self._fenced.is_set():
            return
        now = dt.datetime.now(self.settings.tz)
        for spec in self.specs.values():
            if spec.callable == ROLLUPS_CALLABLE:
                try:
                    self.scheduler.modify_job(spec.id, next_run_time=now)
                    log.info("rollups rebuilding for the new backend: %s runs now", spec.id)
                except Exception as e:
                    log.warning("could not run %s now: %s", spec.id, e)
        self._rebuild_pending = False

    def _on_lost(self, reason: str) -> None:
        with self._lead_lock:
            self._term += 1
            self._fenced.clear()
            self._catch_up.clear()
            try:
                self.scheduler.remove_all_jobs()
            except Exception as e:
                log.error("could not remove jobs after losing the lead: %s", e)
        if not self._stopping.is_set():
            # paged once: the alert fires on this loss and stays firing (not re-announced) until
            # this or another daemon leads again; in a thread, the elector must not wait on it
            threading.Thread(target=self._page_leadership, args=(reason,), name="leadership-alert",
                             daemon=True).start()

    def _page_leadership(self, lost: str | None) -> None:
        """Feed the leadership rule: a finding when the lead was lost (`lost`: why), a good evaluation
        when this daemon leads (which resolves the alert)."""
        from ops.contract import Finding, JobResult, Severity

        findings = [] if lost is None else [Finding(
            rule=LEADERSHIP_RULE, severity=Severity.critical,
            summary=f"the daemon {self.identity} lost the leader lock: {lost}; no jobs run until a daemon leads "
                    "again (`opsbench status` names who holds the lock)")]
        alert_bridge.record_result(self.state_engine, "daemon", JobResult(findings=findings, rules={LEADERSHIP_RULE}),
                                   self.clock(), self.settings)

    def _fire(self, job_id: str) -> None:
        trigger = "schedule"
        if job_id in self._catch_up:
            self._catch_up.discard(job_id)
            trigger = "catch_up"
        try:
            self.runner.run(job_id, trigger=trigger)
        except Exception as e:  # the runner never raises; this is the last line of defence
            log.exception("runner failed for %s", job_id, extra={"job": job_id})
            sentry.capture_exception(e, tags={"job": job_id, "component": "runner"})

    def _on_job_event(self, event: JobSubmissionEvent | JobExecutionEvent) -> None:
        if not self.may_run() or event.job_id not in self.specs:
            return
        if event.code == EVENT_JOB_MAX_INSTANCES:
            self.runner.record_skipped(event.job_id, "previous run still running (one instance at a time)")
        elif event.code == EVENT_JOB_MISSED:
            self.runner.record_skipped(
                event.job_id, f"missed its {event.scheduled_run_time:%H:%M:%S} slot by more than "
                              f"{NO_CATCH_UP_GRACE_S}s")
        elif event.code == EVENT_JOB_ERROR:
            log.error("job wrapper raised: %s", redact(event.exception), extra={"job": event.job_id})

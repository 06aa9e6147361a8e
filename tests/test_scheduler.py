"""The scheduler: catch-up after downtime (coalesced), missed-slot logic on a fake clock, SIGTERM mid-run.

Schedules are placed from each test's own "now", hours from it in both directions, and every wait is
"until the condition holds, within a generous limit": the outcome is the same at any wall time and load.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading

import pytest
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_SUBMITTED
from support import daemon_jobs
from support.daemon_support import DaemonProcess, daemon_env, runs, wait_until, write_jobs_file
from support.fixtures import state  # noqa: F401 - the shared module fixture

from ops.daemon.jobspec import JobSpec
from ops.daemon.runner import Runner
from ops.daemon.scheduler import Daemon, jobs_to_catch_up, missed_slot
from ops.core.clock import utc_now

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

UTC = dt.timezone.utc


def cron(job_id, expr, catch_up=True, tz="UTC", func="counting"):
    return JobSpec(id=job_id, callable=f"support.daemon_jobs:{func}", timezone=tz, cron=expr, catch_up=catch_up, timeout_s=10)


def every(job_id, seconds, catch_up=True, func="counting"):
    return JobSpec(id=job_id, callable=f"support.daemon_jobs:{func}", timezone="UTC", interval_s=seconds, catch_up=catch_up,
                   timeout_s=10)


# -- the decision, on a fake clock ---------------------------------------------------

def test_missed_slot_for_cron_jobs():
    daily = cron("daily", "0 9 * * *", tz="Europe/Istanbul")  # 09:00 Istanbul = 06:00 UTC
    last = dt.datetime(2026, 3, 3, 6, 0, 2, tzinfo=UTC)        # ran on its 3 March slot
    assert not missed_slot(daily, last, dt.datetime(2026, 3, 4, 5, 59, tzinfo=UTC))  # next slot not yet due
    assert missed_slot(daily, last, dt.datetime(2026, 3, 4, 6, 0, 1, tzinfo=UTC))    # 4 March slot passed
    assert missed_slot(daily, last, dt.datetime(2026, 3, 9, 12, 0, tzinfo=UTC))      # five slots: still one run
    assert not missed_slot(daily, None, dt.datetime(2026, 3, 9, tzinfo=UTC))         # never ran: first start
    off = cron("off", "0 9 * * *", catch_up=False)
    assert not missed_slot(off, last, dt.datetime(2026, 3, 9, tzinfo=UTC))


def test_missed_slot_for_interval_jobs_and_the_list():
    ten = every("ten", 600)
    last = dt.datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    assert not missed_slot(ten, last, last + dt.timedelta(minutes=9))
    assert missed_slot(ten, last, last + dt.timedelta(minutes=35))
    specs = [ten, cron("hourly", "0 * * * *"), every("quiet", 600, catch_up=False), every("new", 60)]
    last_started = {"ten": last, "hourly": last + dt.timedelta(minutes=1), "quiet": last}
    now = last + dt.timedelta(minutes=35)
    assert jobs_to_catch_up(specs, last_started, now) == ["ten"]
    assert jobs_to_catch_up(specs, last_started, last + dt.timedelta(minutes=61)) == ["ten", "hourly"]


# -- the daemon in-process: catch-up really runs, once --------------------------------

def wall_clock() -> dt.datetime:
    """The in-process daemons here run on the wall clock, APScheduler's own: a cron slot placed from this
    clock is the slot APScheduler fires, whatever OPSBENCH_CLOCK_OFFSET the suite runs at."""
    return dt.datetime.now(UTC)


def _daily_at(moment: dt.datetime) -> str:
    """A daily crontab (UTC) whose slot is `moment`'s time of day."""
    return f"{moment.minute} {moment.hour} * * *"


def _yearly_at(moment: dt.datetime) -> str:
    """A yearly crontab (UTC) near `moment` (day of month at most 28: a slot every year, 29 February too)."""
    return f"{moment.minute} {moment.hour} {min(moment.day, 28)} {moment.month} *"


class _Submissions:
    """What the daemon's scheduler handed to its executor, and what came back (APScheduler's events)."""

    def __init__(self, d: Daemon):
        self.submitted: list[str] = []
        self.done: list[str] = []
        d.scheduler.add_listener(lambda e: self.submitted.append(e.job_id), EVENT_JOB_SUBMITTED)
        d.scheduler.add_listener(lambda e: self.done.append(e.job_id), EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)

    def settled(self, d: Daemon, jobs: int, after: dt.datetime) -> bool:
        """All `jobs` scheduled, none due before `after`, and every run handed out has returned: whatever
        the daemon starts at once has started and finished, so a run that did not happen will not."""
        scheduled = d.scheduler.get_jobs()
        return (len(scheduled) == jobs and all(j.next_run_time and j.next_run_time > after for j in scheduled)
                and sorted(self.submitted) == sorted(self.done))


def test_catch_up_after_downtime_runs_each_job_once(state):
    # every slot is placed from this test's own "now", hours away from it in both directions, so
    # the outcome is the same at any wall time (1 January 00:05, an hour or a day turning mid-test)
    now = wall_clock()
    specs = {s.id: s for s in [
        cron("daily", _daily_at(now - dt.timedelta(hours=12))),   # last ran 18 h ago: the slot 12 h ago missed
        every("ten_min", 600),                                     # last ran 35 min ago: 3 slots missed
        cron("no_catch", _daily_at(now - dt.timedelta(hours=12)), catch_up=False),  # missed, catch-up off
        cron("fresh", _yearly_at(now + dt.timedelta(days=182))),  # yearly, ran yesterday: nothing missed
    ]}
    # history written by a run of each job back then (fake clocks)
    for job_id, ago in [("daily", dt.timedelta(hours=18)), ("ten_min", dt.timedelta(minutes=35)),
                        ("no_catch", dt.timedelta(hours=18)), ("fresh", dt.timedelta(days=1))]:
        Runner(state.settings, specs, state_engine=state.writer, clock=lambda t=now - ago: t,
               identity="earlier", alert_sink=lambda *a: None).run(job_id)
    daemon_jobs.calls.clear()

    d = Daemon(state.settings, specs, state_engine=state.writer, poll_s=0.2, shutdown_grace_s=5, clock=wall_clock)
    handed_out = _Submissions(d)
    codes = []
    thread = threading.Thread(target=lambda: codes.append(d.run()), daemon=True)
    thread.start()
    try:
        wait_until(lambda: {j for j, _ in daemon_jobs.calls} >= {"daily", "ten_min"}, 60, what="catch-up runs")
        # the next slots are minutes to months away: once what started at once has finished, no other run
        # can come before the end of the test
        wait_until(lambda: handed_out.settled(d, len(specs), wall_clock() + dt.timedelta(minutes=5)), 60,
                   what="the start-up runs to finish and every job to wait for its next slot")
    finally:
        d.stop("test over")
        thread.join(60)
    assert codes == [0]
    assert sorted(handed_out.submitted) == ["daily", "ten_min"]  # no_catch and fresh were not started
    ran = sorted(j for j, _ in daemon_jobs.calls)
    assert ran == ["daily", "ten_min"]  # once each; no_catch and fresh did not run
    for job_id in ("daily", "ten_min"):
        df = runs(state.writer, job_id)
        assert list(df.trigger) == ["catch_up", "schedule"]  # the catch-up run, then the old history row
        assert df.iloc[0].status == "ok" and df.iloc[0].leader == d.identity
    # after catching up the jobs are back on their normal schedule
    assert len(runs(state.writer, "no_catch")) == 1 and len(runs(state.writer, "fresh")) == 1


def test_daemon_keeps_running_when_jobs_fail_hang_or_overlap(state):
    """A raising job, a hanging one (timeout) and a slow one on a 1 s interval: the daemon carries on."""
    specs = {
        "boom": every("boom", 1, func="raising"),
        "stuck": JobSpec(id="stuck", callable="support.daemon_jobs:hanging", timezone="UTC", interval_s=1, timeout_s=0.5),
        "fine": every("fine", 1, func="ok"),
    }
    daemon_jobs.release.clear()
    d = Daemon(state.settings, specs, state_engine=state.writer, poll_s=0.2, shutdown_grace_s=2)
    thread = threading.Thread(target=d.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(runs(state.writer, "fine")) >= 3 and len(runs(state.writer, "stuck")) >= 3, 20,
                   what="several rounds")
    finally:
        d.stop("test over")
        daemon_jobs.release.set()
        thread.join(60)
    assert set(runs(state.writer, "boom").status) == {"failed"}
    stuck = runs(state.writer, "stuck")
    assert "timeout" in set(stuck.status)
    # while the abandoned run hangs, later slots are skipped, never started twice
    assert set(stuck.status) <= {"timeout", "skipped", "ok"} and "skipped" in set(stuck.status)
    assert set(runs(state.writer, "fine").status) == {"ok"}



def test_probes_and_metric_checks_run_once_right_after_start(state, pg_home):
    """The shipped http_probes, postgres_probe and metric_probes (intervals of minutes) run as soon as the
    daemon leads, with no history to catch up on; an hourly job beside them waits for its slot."""
    from ops.core.settings import load_settings
    from ops.daemon.jobspec import load_jobs
    from ops.daemon.scheduler import RUN_AT_START

    shipped = {s.id: s for s in load_jobs(load_settings(OPSBENCH_HOME=str(pg_home)))}
    probes = {k: shipped[k] for k in ("http_probes", "postgres_probe", "metric_probes")}
    assert {s.callable for s in probes.values()} == RUN_AT_START
    assert all((s.interval_s or 0) >= 60 for s in probes.values())  # a full interval away otherwise
    specs = {**probes, "hourly_control": every("hourly_control", 3600)}
    daemon_jobs.calls.clear()
    d = Daemon(state.settings, specs, state_engine=state.writer, poll_s=0.2, shutdown_grace_s=5)
    handed_out = _Submissions(d)
    thread = threading.Thread(target=d.run, daemon=True)
    thread.start()
    try:
        # "right after start": long before the shortest interval (60 s) could bring them
        wait_until(lambda: all(len(runs(state.writer, k)) for k in probes), 50, what="the probes' first runs")
        wait_until(lambda: handed_out.settled(d, len(specs), wall_clock() + dt.timedelta(seconds=10)), 30,
                   what="the first runs to finish and every job to wait for its next slot")
    finally:
        d.stop("test over")
        thread.join(60)
    assert sorted(handed_out.submitted) == sorted(probes)
    for job_id in probes:
        df = runs(state.writer, job_id)
        assert len(df) == 1 and df.iloc[0].trigger == "schedule" and df.iloc[0].leader == d.identity, (job_id, df)
    assert len(runs(state.writer, "hourly_control")) == 0 and daemon_jobs.calls == []

# -- SIGTERM on a real process while a job runs -----------------------------------------

JOBS = """
[jobs.long]
callable = "support.daemon_jobs:waits_for_file"
interval = "1h"
timeout = 120
catch_up = true
[jobs.long.args]
path = "{release}"
"""


def test_sigterm_waits_for_the_running_job_records_it_and_exits_0(state, tmp_path, pg_home):
    # the run lasts until the test lets it end, so it is still going at SIGHUP and SIGTERM however slow
    # the machine; it starts at once as the catch-up of a run two hours ago, and its next slot is an
    # hour away, so nothing else starts on its own before the test ends
    Runner(state.settings, {"long": every("long", 3600)}, state_engine=state.writer, identity="earlier",
           clock=lambda: utc_now() - dt.timedelta(hours=2), alert_sink=lambda *a: None).run("long")
    release = tmp_path / "release"
    env = daemon_env(state.url, pg_home, write_jobs_file(tmp_path / "jobs.toml", JOBS.format(release=release)))
    proc = DaemonProcess(env, tmp_path, "term", "--grace", "120")
    try:
        wait_until(lambda: "running" in set(runs(state.writer, "long").status), 60, what="a run in progress")
        proc.signal(signal.SIGHUP)  # systemctl reload: the jobs file is re-read, the daemon and its run carry on
        wait_until(lambda: "SIGHUP: jobs file reloaded" in proc.output(), 60, what="the SIGHUP line")
        assert proc.proc.poll() is None
        proc.signal(signal.SIGTERM)
        wait_until(lambda: "daemon stopping: SIGTERM" in proc.output(), 60, what="the SIGTERM line")
        assert proc.proc.poll() is None                          # stopping, but waiting for the run
        assert list(runs(state.writer, "long").status) == ["running", "ok"]   # the catch-up run, the old one
        release.touch()                                          # the run may end now
        code = proc.wait(60)
    finally:
        release.touch()
        proc.kill()
    assert code == 0, proc.output()[-3000:]
    df = runs(state.writer, "long")
    assert list(df.trigger) == ["catch_up", "schedule"]         # nothing new started after SIGTERM
    row = df.iloc[0]
    assert row.status == "ok" and row.summary == "released by the file"  # it waited for the job to finish
    out = proc.output()
    assert "daemon stopping: SIGTERM" in out and "daemon stopped" in out


def test_daemon_waits_for_an_unreachable_state_db_and_still_stops_cleanly(state, caplog):
    import sqlalchemy as sa

    dead = sa.create_engine("postgresql+psycopg://ops@127.0.0.1:1/state", connect_args={"connect_timeout": 1})
    d = Daemon(state.settings, {"fine": every("fine", 1, func="ok")}, state_engine=dead, poll_s=0.2)
    codes = []
    thread = threading.Thread(target=lambda: codes.append(d.run()), daemon=True)
    thread.start()
    wait_until(lambda: any("state database unavailable" in r.getMessage() for r in caplog.records), 60,
               what="the retry log line")
    assert thread.is_alive()  # waiting, not dead
    d.stop("test over")
    thread.join(60)
    assert codes == [0]

"""One leader among several daemons: the advisory lock in-process, then two real daemon processes."""

from __future__ import annotations

import datetime as dt
import json
import signal
import time

import pytest
from support.daemon_support import DaemonProcess, daemon_env, instances, runs, wait_until, write_jobs_file
from support.fixtures import state  # noqa: F401 - the shared module fixture

from ops.daemon.leader import LeaderElector
from ops.core.clock import utc_now


def _elector(state, name, events, **kw):
    return LeaderElector(state.writer.url, identity=name, on_elected=lambda: events.append((name, "elected")),
                         on_lost=lambda reason: events.append((name, "lost")), **kw)


def test_one_leader_and_a_lost_connection_stops_it_before_it_retries(state):
    events: list[tuple[str, str]] = []
    a, b = _elector(state, "a", events), _elector(state, "b", events)
    try:
        assert a.poll_once() is True
        assert b.poll_once() is False and b.poll_once() is False
        assert events == [("a", "elected")]
        seen = instances(state.writer, utc_now() - dt.timedelta(minutes=1))
        assert dict(zip(seen.instance, seen.is_leader)) == {"a": True, "b": False}

        a._conn.invalidate()  # the lock connection dies under the leader
        assert a.poll_once() is False
        assert events[-1] == ("a", "lost") and not a.is_leader()   # stopped at once
        # the server dropped the session, so the lock is free for the standby
        wait_until(lambda: b.poll_once(), 30, what="standby to take the lock")
        assert events[-1] == ("b", "elected")
        assert a.poll_once() is False  # reconnects and tries again: now a standby
    finally:
        a.stop()
        b.stop()
        a._shutdown()
        b._shutdown()


def test_a_leader_whose_check_stalls_stops_within_the_lease(state):
    events: list = []
    lease_s = 1.0
    a = _elector(state, "lease", events, lease_s=lease_s)
    try:
        before_poll = time.monotonic()
        assert a.poll_once() is True  # leading: the lock was just confirmed
        # no successful check after that one (e.g. a hung network): no query is made from here on, so only
        # the lease running out can close the runner's gate, and it must, without waiting for any query
        wait_until(lambda: not a.is_leader(), lease_s + 30, interval_s=0.02, what="the lease to run out")
        assert time.monotonic() - before_poll >= lease_s  # not before the lease was over
        assert events == [("lease", "elected")]            # nobody told it: the lease alone
    finally:
        a._shutdown()


def test_clean_stop_releases_the_lock_and_marks_the_instance_stopped(state):
    events: list = []
    a, b = _elector(state, "first", events), _elector(state, "second", events)
    a.start()
    wait_until(a.is_leader, 30, what="first to lead")
    a.stop()
    assert b.poll_once() is True  # released at once, no waiting for a timeout
    b._shutdown()
    seen = instances(state.writer, utc_now() - dt.timedelta(minutes=1))
    row = seen[seen.instance == "first"].iloc[0]
    assert not row.is_leader and row.stopped_at is not None


JOBS = """
[jobs.tick]
callable = "support.daemon_jobs:slow"
interval = 1
timeout = 10
catch_up = false
[jobs.tick.args]
seconds = 0.3
"""


# kill -9 of the leader to the standby running a job: the standby's next poll takes the lock, then it
# fences (the dead leader's run is closed once its heartbeat is DEFAULT_FENCE_GRACE_S old). The bound is
# the lease (5 s) and the fence grace (4 s) with room for a loaded machine; `python -m bench` measures
# the real figure (bench/failover.py).
FAILOVER_LIMIT_S = 30.0


def _last_seen(state, pid: int):
    seen = instances(state.writer, utc_now() - dt.timedelta(minutes=1))
    rows = seen[seen.pid == pid]
    return rows.iloc[0].last_seen if len(rows) else None


def _leader_pid(state) -> int | None:
    seen = instances(state.writer, utc_now() - dt.timedelta(minutes=1))
    leaders = seen[seen.is_leader & seen.stopped_at.isna()]
    return int(leaders.iloc[0].pid) if len(leaders) else None


def test_two_daemons_one_leader_failover_after_kill_9_and_no_overlap(state, tmp_path, pg_home):
    jobs_file = write_jobs_file(tmp_path / "jobs.toml", JOBS)
    env = daemon_env(state.url, pg_home, jobs_file)
    a = DaemonProcess(env, tmp_path, "a")
    b = None
    try:
        wait_until(lambda: len(runs(state.writer, "tick")) >= 2, 120, what="the first daemon to run jobs")
        assert _leader_pid(state) == a.pid
        b = DaemonProcess(env, tmp_path, "b")
        checked_in = wait_until(lambda: _last_seen(state, b.pid), 60, what="b to check in")
        ticks = len(runs(state.writer, "tick"))
        # b stands by through a few of its polls (its last_seen moves on) while a goes on running the job
        wait_until(lambda: _last_seen(state, b.pid) >= checked_in + dt.timedelta(seconds=2)
                   and len(runs(state.writer, "tick")) >= ticks + 2, 60, what="b to poll as a standby")
        df = runs(state.writer, "tick")
        identities = set(df.leader)
        assert len(identities) == 1 and f":{a.pid}:" in identities.pop()  # only the leader ran jobs
        assert _leader_pid(state) == a.pid

        a.proc.kill()  # kill -9: no cleanup, the lock goes with the session
        a.wait(30)
        killed_at = time.monotonic()
        wait_until(lambda: any(f":{b.pid}:" in x for x in runs(state.writer, "tick").leader), FAILOVER_LIMIT_S,
                   what="the standby to take over and run")  # "within seconds"
        print(f"failover after kill -9: {time.monotonic() - killed_at:.1f} s")
        assert _leader_pid(state) == b.pid
        # b runs the job on: a few finished runs of its own before it is stopped
        wait_until(lambda: (lambda df: ((df.leader.str.contains(f":{b.pid}:")) & (df.status == "ok")).sum() >= 2)(
            runs(state.writer, "tick")), 60, what="b's runs")
        b.signal(signal.SIGTERM)
        assert b.wait(60) == 0
    finally:
        a.kill()
        if b is not None:
            b.kill()

    df = runs(state.writer, "tick").sort_values("started_at")
    assert set(df.status) <= {"ok", "skipped", "failed"}
    assert "running" not in set(df.status)
    a_rows = df[df.leader.str.contains(f":{a.pid}:")]
    b_rows = df[df.leader.str.contains(f":{b.pid}:")]
    assert len(a_rows) >= 3 and len(b_rows) >= 1
    # at no instant did both daemons run a job: every interval of one ends before any of the other starts
    real = df[df.status != "skipped"]
    intervals = list(zip(real.started_at, real.finished_at, real.leader))
    for i, (s1, e1, l1) in enumerate(intervals):
        for s2, e2, l2 in intervals[i + 1:]:
            if l1 != l2:
                assert e1 <= s2 or e2 <= s1, f"{l1} ran {s1}..{e1} while {l2} ran {s2}..{e2}"
    # within one daemon, one instance of the job at a time too
    for _, group in real.groupby("leader"):
        ordered = group.sort_values("started_at")
        starts, ends = list(ordered.started_at), list(ordered.finished_at)
        assert all(s >= e for s, e in zip(starts[1:], ends[:-1]))

    # the JSON log lines carry the fields a log pipeline needs
    lines = [json.loads(ln) for ln in (tmp_path / "b.out").read_text().splitlines() if ln.startswith("{")]
    finished = [ln for ln in lines if ln["event"] == "job finished"]
    assert finished, (tmp_path / "b.out").read_text()[-2000:]
    assert {"timestamp", "level", "event", "job", "run_id", "duration", "environment"} <= set(finished[0])
    assert finished[0]["job"] == "tick" and finished[0]["environment"] == "test"

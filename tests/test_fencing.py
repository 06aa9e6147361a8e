"""Fencing between daemons: a leader that loses its lock connection mid-run never overlaps the new one.

The old leader stops scheduling at once; its in-flight run goes on and records its own outcome;
the new leader claims the leader term, waits for that run (bounded by the job's timeout) and only
then runs jobs. Runs of daemons that are gone are closed at once.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from support import daemon_jobs
from support.daemon_support import runs, wait_until
from support.fixtures import state  # noqa: F401 - the shared module fixture

import queries
from ops.daemon.jobspec import JobSpec
from ops.daemon.leader import LEADER_LOCK_KEY
from ops.daemon.runner import Runner
from ops.daemon.scheduler import Daemon
from ops.core.clock import utc_now

UTC = dt.timezone.utc


def _sql():
    return queries.load("state/daemon")


def _work(job_id: str, seconds: float, timeout_s: float = 10) -> JobSpec:
    return JobSpec(id=job_id, callable="support.daemon_jobs:slow", timezone="UTC", interval_s=1, timeout_s=timeout_s,
                   catch_up=False, args={"seconds": seconds})


def _start(d: Daemon) -> threading.Thread:
    t = threading.Thread(target=d.run, name=f"daemon-{d.identity}", daemon=True)
    t.start()
    return t


def _no_overlap_across_instances(df) -> None:
    real = df[df.status != "skipped"]
    spans = list(zip(real.started_at, real.finished_at, real.leader))
    for i, (s1, e1, l1) in enumerate(spans):
        for s2, e2, l2 in spans[i + 1:]:
            if l1 != l2:
                assert e1 <= s2 or e2 <= s1, f"{l1} ran {s1}..{e1} while {l2} ran {s2}..{e2}"


def test_leader_losing_its_lock_mid_run_finishes_it_and_the_new_leader_waits(state, caplog):
    # a's run lasts until the test releases it, so it is still going when a loses the lock, however slow
    # the machine; its timeout is far off, so b waits for it rather than timing it out
    specs = {"work": JobSpec(id="work", callable="support.daemon_jobs:hanging", timezone="UTC", interval_s=1,
                             timeout_s=120, catch_up=False)}
    daemon_jobs.release.clear()
    # a polls slowly, so after its lock connection dies b (polling fast) is the one to take the lock
    a = Daemon(state.settings, specs, state_engine=state.writer, identity="fence-a", poll_s=0.5,
               shutdown_grace_s=5)
    b = Daemon(state.settings, specs, state_engine=state.writer, identity="fence-b", poll_s=0.1,
               shutdown_grace_s=5)
    ta = _start(a)
    tb = None
    try:
        wait_until(lambda: "running" in set(runs(state.writer, "work").status), 60, what="a's first run")
        assert a.may_run()
        tb = _start(b)
        wait_until(lambda: b.elector._conn is not None, 60, what="b to poll")
        with state.writer.begin() as conn:
            (pid,) = [r.pid for r in _sql().lock_holder.execute(conn, key=LEADER_LOCK_KEY)]
            assert _sql().terminate_backend.execute(conn, pid=pid).scalar_one()  # a's lock session is gone
        lost_at = utc_now()
        wait_until(lambda: not a.may_run(), 30, interval_s=0.02, what="a to stop")
        # the gate closes first (is_leader is false), the elector's on_lost callback then unschedules:
        # nothing may run in between, and nothing stays scheduled
        wait_until(lambda: a.scheduler.get_jobs() == [], 30, interval_s=0.02, what="a to unschedule its jobs")
        # b leads, but runs nothing while a's run is still going
        wait_until(b.elector.is_leader, 60, what="b to take the lock")
        wait_until(lambda: any(r.getMessage().startswith("not running jobs yet: fence-a still runs work")
                               for r in caplog.records), 60, what="b to see a's run and wait for it")
        assert not b.may_run() and "running" in set(runs(state.writer, "work").status)
        daemon_jobs.release.set()  # a's run ends now
        wait_until(lambda: (lambda df: ((df.leader == "fence-b") & (df.status == "ok")).any())(
            runs(state.writer, "work")), 60, what="b to lead and finish a run")
    finally:
        daemon_jobs.release.set()
        a.stop("test over")
        if tb is not None:
            b.stop("test over")
        ta.join(10)
        if tb is not None:
            tb.join(10)

    df = runs(state.writer, "work").sort_values("started_at")
    assert "running" not in set(df.status)
    a_real = df[(df.leader == "fence-a") & (df.status != "skipped")]
    # a's in-flight run was neither killed nor closed by b: it recorded its real outcome itself
    (row,) = a_real.itertuples()
    assert row.status == "ok" and row.error is None and row.summary == "released"
    assert row.started_at < lost_at
    b_real = df[(df.leader == "fence-b") & (df.status != "skipped")]
    assert len(b_real) >= 1 and b_real.started_at.min() >= row.finished_at  # b waited for it
    _no_overlap_across_instances(df)


def test_fence_closes_runs_of_gone_daemons_and_waits_for_live_ones(state):
    sql = _sql()
    specs = {"fjob": _work("fjob", 1, timeout_s=10)}
    # a heartbeat an hour old is gone, a fresh one live, with a minute's grace between them
    d = Daemon(state.settings, specs, state_engine=state.writer, identity="fence-new", fence_grace_s=60)
    now = utc_now()

    def instance(name):
        with state.writer.begin() as conn:
            sql.upsert_instance.execute(conn, instance=name, host="h", pid=1, version="t", environment="test",
                                        started_at=now, now=utc_now(), is_leader=False)

    def run(run_id, leader, ago_s):
        with state.writer.begin() as conn:
            sql.insert_run.execute(conn, run_id=run_id, job="fjob", trigger="schedule",
                                   started_at=now - dt.timedelta(seconds=ago_s), leader=leader)

    ids = {k: f"00000000-0000-4000-8000-00000000000{i}" for i, k in enumerate(
        ["live_fresh", "live_overdue", "stopped", "unknown", "stale", "manual_dead", "manual_fresh"])}
    instance("f-stopped")
    with state.writer.begin() as conn:
        sql.stop_instance.execute(conn, instance="f-stopped", now=now)
    instance("f-stale")
    with state.writer.begin() as conn:  # f-stale's last heartbeat was an hour ago (the server's clock)
        conn.execute(sa.text("UPDATE opsbench.daemon_instances SET heartbeat_at = clock_timestamp() - interval '1 hour'"
                             " WHERE instance = 'f-stale'"))
    instance("f-live")
    run(ids["live_fresh"], "f-live", 1)
    run(ids["live_overdue"], "f-live", 3600)        # past its 10 s timeout + grace
    run(ids["stopped"], "f-stopped", 1)
    run(ids["unknown"], "f-never-registered", 1)
    run(ids["stale"], "f-stale", 1)
    run(ids["manual_dead"], "manual:h:1", 3600)     # opsbench run died an hour ago
    run(ids["manual_fresh"], "manual:h:2", 1)

    waiting = d.fence_once()
    assert [str(r.run_id) for r in waiting] == [ids["live_fresh"]]  # a live daemon's run: wait for it
    got = {str(r.run_id): r for r in runs(state.writer, "fjob").itertuples()}
    assert got[ids["live_fresh"]].status == "running"
    assert got[ids["manual_fresh"]].status == "running"
    assert got[ids["live_overdue"]].status == "timeout" and "f-live" in got[ids["live_overdue"]].error
    for k in ("stopped", "unknown", "stale"):
        assert got[ids[k]].status == "failed" and got[ids[k]].summary == "interrupted", k
    assert got[ids["manual_dead"]].status == "failed" and "manual run" in got[ids["manual_dead"]].error

    # the old leader's run ends on its own: its outcome is kept, and nothing is left to wait for
    with state.writer.begin() as conn:
        assert sql.finish_run.execute(conn, run_id=ids["live_fresh"], status="ok", finished_at=now,
                                      duration_s=1.0, summary="done").fetchall()
        sql.expire_run.execute(conn, run_id=ids["manual_fresh"], status="failed", at=now, summary="test",
                               error="test cleanup")
    assert d.fence_once() == []
    assert {str(r.run_id): r.status for r in runs(state.writer, "fjob").itertuples()}[ids["live_fresh"]] == "ok"


def test_a_deposed_leader_cannot_start_a_run_once_the_term_is_claimed(state):
    specs = {"tjob": _work("tjob", 0.1)}

    def daemon_runner(identity):  # a daemon's runner whose gate is still open (the loss not noticed yet)
        return Runner(state.settings, specs, state_engine=state.writer, identity=identity, fenced=True,
                      gate=lambda: True, alert_sink=lambda *a: None)

    old, new = daemon_runner("term-old"), daemon_runner("term-new")
    with state.writer.begin() as conn:
        _sql().claim_term.execute(conn, instance="term-old", now=utc_now())
    record = old.run("tjob")
    assert record is not None and record.status == "ok"
    with state.writer.begin() as conn:
        _sql().claim_term.execute(conn, instance="term-new", now=utc_now())
    assert old.run("tjob") is None                 # refused by the term: nothing started
    assert old.running_jobs() == []
    assert new.run("tjob").status == "ok"
    df = runs(state.writer, "tjob")
    assert list(df.leader) == ["term-new", "term-old"]     # no row of the refused run

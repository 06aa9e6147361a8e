"""The runner: job history rows, timeouts, skips, failures and the alert hand-off, on a real state DB."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from support import daemon_jobs
from support.fixtures import state  # noqa: F401 - the shared module fixture

import queries
from ops.contract import JobResult
from ops.daemon.jobspec import JobSpec
from ops.daemon.runner import Runner
from ops.core.clock import utc_now

FAKE_NOW = dt.datetime(2026, 3, 4, 9, 0, 0, tzinfo=dt.timezone.utc)


def spec(job_id: str, func: str, timeout_s: float = 10.0, **kw) -> JobSpec:
    return JobSpec(id=job_id, callable=f"support.daemon_jobs:{func}", timezone="UTC", interval_s=60, timeout_s=timeout_s, **kw)


SPECS = {s.id: s for s in [
    spec("fine", "ok"),
    spec("finder", "with_finding", args={"limit": 5}),
    spec("boom", "raising"),
    spec("says_failed", "reports_failure"),
    spec("nothing", "returns_nothing"),
    spec("stuck", "hanging", timeout_s=0.3),
    spec("slowpoke", "slow", args={"seconds": 0.6}),
]}


class Sink:
    def __init__(self):
        self.calls: list[tuple[str, JobResult, dt.datetime]] = []

    def __call__(self, source, result, now):
        self.calls.append((source, result, now))


@pytest.fixture(autouse=True)
def _release_hanging_jobs():
    daemon_jobs.release.clear()
    yield
    daemon_jobs.release.set()


def runs(engine, job):
    return queries.load("state/daemon").runs(engine, job=job)


def make_runner(state, sink=None, **kw):
    return Runner(state.settings, SPECS, state_engine=state.writer, clock=lambda: FAKE_NOW,
                  identity="test-runner", alert_sink=sink if sink is not None else Sink(), **kw)


def test_ok_run_is_recorded_and_handed_to_alerts(state):
    sink = Sink()
    record = make_runner(state, sink).run("fine", trigger="manual")
    assert record.status == "ok" and record.summary == "all good"
    df = runs(state.writer, "fine")
    assert len(df) == 1
    row = df.iloc[0]
    assert row.status == "ok" and row.trigger == "manual" and row.leader == "test-runner"
    assert row.started_at == FAKE_NOW                     # the injected clock
    assert row.finished_at >= row.started_at and 0 <= row.duration_s < 30  # a real duration, not the fake clock's
    assert row.metrics == {"checked": 3.0} and row.error is None
    (source, handed, now), = sink.calls
    assert source == "fine" and handed.findings == []
    # a good run counts as a good evaluation of the runner's own rules (so their alerts resolve)
    assert {"example_rule", "job_failed", "job_timeout"} <= handed.rules


def test_job_findings_and_args_reach_the_alert_manager(state):
    sink = Sink()
    record = make_runner(state, sink).run("finder")
    assert record.metrics == {"value": 6.0}  # args limit=5 reached the job
    (_, handed, _), = sink.calls
    assert [f.key for f in handed.findings] == ["too_high{probe=x}"]
    assert runs(state.writer, "finder").iloc[0].findings == 1


def test_raising_job_is_failed_with_redacted_error_and_job_failed_finding(state):
    sink = Sink()
    record = make_runner(state, sink).run("boom")   # does not raise
    assert record.status == "failed"
    row = runs(state.writer, "boom").iloc[0]
    assert row.status == "failed" and "RuntimeError: boom while calling" in row.error
    assert daemon_jobs.FAKE_DB_PASSWORD not in row.error and "AAHsecretTOKEN" not in row.error
    (_, handed, _), = sink.calls
    (finding,) = handed.findings
    assert finding.rule == "job_failed" and finding.labels == {"job": "boom"}
    assert finding.command == "opsbench run boom"


@pytest.mark.parametrize("job, expect", [("says_failed", "backend unreachable"),
                                         ("nothing", "returned NoneType, expected JobResult")])
def test_reported_failure_and_bad_return_are_failed_runs(state, job, expect):
    sink = Sink()
    record = make_runner(state, sink).run(job)
    assert record.status == "failed" and expect in record.summary
    assert [f.rule for f in sink.calls[0][1].findings] == ["job_failed"]
    assert runs(state.writer, job).iloc[0].status == "failed"


def test_timeout_is_marked_alerted_and_blocks_overlapping_runs(state):
    sink = Sink()
    runner = make_runner(state, sink)
    record = runner.run("stuck")
    assert record.status == "timeout"
    assert 0.3 <= record.duration_s < 20  # cut at its 0.3 s timeout, long before the hang's 30 s
    (_, handed, _), = sink.calls
    (finding,) = handed.findings
    assert finding.rule == "job_timeout" and finding.labels == {"job": "stuck"}
    # the abandoned thread still runs: a new run of the same job is skipped, not started twice
    second = runner.run("stuck")
    assert second.status == "skipped" and "abandoned" in second.summary
    # other jobs are unaffected
    assert runner.run("fine").status == "ok"
    daemon_jobs.release.set()
    assert runner.wait_idle(2)
    deadline = threading.Event()
    for _ in range(50):  # the abandoned thread frees the job when it really ends
        if "stuck" not in runner.running_jobs():
            break
        deadline.wait(0.05)
    third = runner.run("stuck")
    assert third.status == "ok"
    df = runs(state.writer, "stuck")
    assert sorted(df.status) == ["ok", "skipped", "timeout"]
    timeout_row = df[df.status == "timeout"].iloc[0]
    assert timeout_row.duration_s >= 0.3  # the late finish did not overwrite the timeout mark


def test_concurrent_run_of_the_same_job_is_skipped(state):
    runner = make_runner(state)
    results = []
    threads = [threading.Thread(target=lambda: results.append(runner.run("slowpoke"))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert sorted(r.status for r in results) == ["ok", "skipped"]
    assert sorted(runs(state.writer, "slowpoke").status) == ["ok", "skipped"]


def test_closed_gate_starts_nothing_and_dry_run_records_nothing(state):
    sink = Sink()
    before = len(runs(state.writer, "fine"))
    assert make_runner(state, sink, gate=lambda: False).run("fine") is None
    dry = make_runner(state, sink).run("fine", dry_run=True)
    assert dry.status == "ok" and dry.dry_run
    assert len(runs(state.writer, "fine")) == before
    assert sink.calls == []


def test_unreachable_state_db_or_broken_alert_manager_never_stops_a_run(state, monkeypatch, caplog):
    dead = sa.create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", connect_args={"connect_timeout": 2})
    record = Runner(state.settings, SPECS, state_engine=dead, identity="t", alert_sink=Sink()).run("fine")
    assert record.status == "ok"
    assert any("could not record" in r.getMessage() for r in caplog.records)

    # the real bridge in front of an alert manager that blows up
    from ops.alerting import manager

    def record_result(*args, **kwargs):
        raise ValueError("alert manager exploded")

    monkeypatch.setattr(manager, "record_result", record_result)
    caplog.clear()
    record = Runner(state.settings, SPECS, state_engine=state.writer, identity="t").run("boom")
    assert record.status == "failed"
    assert runs(state.writer, "boom").iloc[0].status == "failed"  # the row was still closed
    assert any("alert manager call failed" in r.getMessage() for r in caplog.records)


def test_timeout_and_failure_reach_the_real_alert_manager(state):
    from ops.alerting import manager as alerts
    runner = Runner(state.settings, SPECS, state_engine=state.writer, identity="t")  # the real bridge
    assert runner.run("boom").status == "failed"
    assert runner.run("stuck").status == "timeout"
    daemon_jobs.release.set()
    keys = {e.key for e in alerts.recent(state.writer, limit=50)}
    assert {"job_failed{job=boom}", "job_timeout{job=stuck}"} <= keys


def test_a_database_outage_pages_once_whichever_job_runs_first(state, pg_home):
    """A job failing on an unreachable backend is held behind the probe's root cause, even evaluated first."""
    import socket

    from ops.alerting import manager as alerts
    from ops.alerting import outbox
    from ops.core.settings import load_settings

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = load_settings(DATABASE_URL=f"postgresql://ops@127.0.0.1:{port}/app", OPSBENCH_STATE_URL=state.url,
                         OPSBENCH_HOME=str(pg_home))
    specs = {
        "reconcile": JobSpec(id="reconcile", callable="jobs.reconcile:reconcile", timezone="UTC", interval_s=60,
                             timeout_s=30),
        "postgres_probe": JobSpec(id="postgres_probe", callable="jobs.probes:postgres", timezone="UTC",
                                  interval_s=60, timeout_s=30, args={"connect_timeout_s": 2}),
    }
    runner = Runner(down, specs, state_engine=state.writer, identity="outage")  # the real alert manager
    before = {m.id for m in outbox.recent(state.writer, 1000)}
    for _ in range(2):  # two cycles; the failing job is evaluated before the probe each time
        failed = runner.run("reconcile")
        assert failed.status == "failed" and "OperationalError" in failed.error
        (job_failed,) = failed.findings
        assert job_failed.rule == "job_failed" and job_failed.requires == ("database_unreachable",)
        assert runner.run("postgres_probe").status == "ok"
    new = [m for m in outbox.recent(state.writer, 1000) if m.id not in before]
    assert len(new) == 1, [m.body for m in new]                   # the root cause only
    assert "database_unreachable" in new[0].body and "reconcile" not in new[0].body
    held = {a.key: a.held_reason for a in alerts.firing(state.writer)}
    assert held["job_failed{job=reconcile}"] == "suppressed"
    assert "database_unreachable{db=backend}" in held


def test_a_failure_with_the_database_up_is_announced_when_the_probe_says_so(state):
    """A job_failed held until the probe ran is announced by the probe's evaluation if the database is fine."""
    from ops.alerting import manager as alerts
    from ops.alerting import outbox
    from ops.contract import Finding, Severity

    t0 = utc_now()
    settings = state.settings
    good_probe = JobResult(rules={"x_unreachable"})   # a root-cause rule of its own: the outage test's still fires
    alerts.record_result(state.writer, "probe_x", good_probe, t0, settings)
    before = {m.id for m in outbox.recent(state.writer, 1000)}
    failed = JobResult(status="failed", rules={"job_failed"}, findings=[Finding(
        "job_failed", Severity.warning, "job flaky failed", labels={"job": "flaky"},
        requires=("x_unreachable",))])
    (t,) = alerts.record_result(state.writer, "flaky", failed, t0 + dt.timedelta(seconds=5), settings)
    assert (t.to_state, t.notified, t.held) == ("firing", None, "awaiting")   # the probe has not run since
    assert not [m for m in outbox.recent(state.writer, 1000) if m.id not in before]
    ts = alerts.record_result(state.writer, "probe_x", good_probe, t0 + dt.timedelta(seconds=10), settings)
    assert [(t.key, t.notified) for t in ts] == [("job_failed{job=flaky}", "firing")]
    (msg,) = [m for m in outbox.recent(state.writer, 1000) if m.id not in before]
    assert "flaky" in msg.body


def test_a_crashed_manual_run_is_closed_after_its_timeout_and_grace(state):
    sql = queries.load("state/daemon")
    dead, alive = "00000000-0000-4000-8000-0000000000d1", "00000000-0000-4000-8000-0000000000a1"
    with state.writer.begin() as conn:
        # an `opsbench run` killed an hour ago, and one started 100 s ago (default 300 s timeout + 60 s grace)
        sql.insert_run.execute(conn, run_id=dead, job="gone_job", trigger="manual",
                               started_at=FAKE_NOW - dt.timedelta(hours=1), leader="manual:host:1")
        sql.insert_run.execute(conn, run_id=alive, job="gone_job", trigger="manual",
                               started_at=FAKE_NOW - dt.timedelta(seconds=100), leader="manual:host:2")
    assert make_runner(state).run("fine").status == "ok"      # any run tidies up first
    got = {str(r.run_id): r for r in runs(state.writer, "gone_job").itertuples()}
    assert got[dead].status == "failed" and got[dead].summary == "interrupted"
    assert "manual:host:1" in got[dead].error and got[dead].finished_at == FAKE_NOW
    assert got[alive].status == "running"
    with state.writer.begin() as conn:
        sql.expire_run.execute(conn, run_id=alive, status="failed", at=FAKE_NOW, summary="test", error="cleanup")


def test_a_dry_run_cannot_write_even_when_the_job_forgets_to_check(state):
    """Dry run is a capability of the context: its engines open read-only transactions."""
    specs = {"careless": spec("careless", "writes_ignoring_dry_run")}
    runner = Runner(state.settings, specs, state_engine=state.writer, identity="t")
    exists = "SELECT to_regclass('opsbench.careless_writes') IS NOT NULL"

    dry = runner.run("careless", dry_run=True)
    assert dry.status == "failed" and "read-only transaction" in (dry.error or "")
    with state.writer.connect() as conn:
        assert conn.exec_driver_sql(exists).scalar_one() is False

    real = runner.run("careless")
    assert real.status == "ok"
    with state.writer.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM opsbench.careless_writes").scalar_one() == 1
        conn.exec_driver_sql("DROP TABLE opsbench.careless_writes")
        conn.commit()


def test_a_dry_run_context_records_and_enqueues_nothing(state):
    """ctx.record / ctx.enqueue are how jobs write: in a dry run they call nothing and answer None."""
    from ops.contract import JobContext

    called = []
    dry = JobContext(settings=state.settings, job_id="x", run_id="r1", dry_run=True)
    assert dry.record(called.append) is None and dry.enqueue(called.append) is None
    assert called == []
    real = JobContext(settings=state.settings, job_id="x", run_id="r2")
    assert real.record(lambda engine: "kept") == "kept"
    assert real.enqueue(lambda conn: conn.exec_driver_sql("SELECT 1").scalar_one()) == 1


def test_job_finished_log_line_carries_the_summary(state, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="opsbench.runner"):
        make_runner(state).run("fine", trigger="manual")
    (line,) = [r for r in caplog.records if r.getMessage() == "job finished"]
    assert line.summary == "all good" and line.status == "ok"


def test_a_job_skipped_for_the_same_reason_is_said_once(state, caplog):
    """http_probes with no targets skips every minute: the first skip is logged at INFO, the repeats at
    DEBUG; a changed reason, or a run that is not skipped, is said again."""
    import logging

    probes = JobSpec(id="http_probes", callable="jobs.probes:http_probes", timezone="UTC", interval_s=60,
                     timeout_s=10.0)
    runner = Runner(state.settings, {**SPECS, "http_probes": probes}, state_engine=state.writer,
                    clock=lambda: FAKE_NOW, identity="test-runner", alert_sink=Sink())
    with caplog.at_level(logging.DEBUG, logger="opsbench.runner"):
        for _ in range(3):
            assert runner.run("http_probes").status == "skipped"
        runner.run("fine")
    finished = [(r.levelno, getattr(r, "job", None)) for r in caplog.records if r.getMessage() == "job finished"]
    assert [lvl for lvl, job in finished if job == "http_probes"] == [logging.INFO, logging.DEBUG, logging.DEBUG]
    assert [lvl for lvl, job in finished if job == "fine"] == [logging.INFO]
    assert sum(1 for r in caplog.records if r.levelno >= logging.INFO and "skipped" in str(getattr(r, "status", "")))\
        == 1

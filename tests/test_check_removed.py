"""Alerts whose check is gone close as "check removed", without a RESOLVED page.

In-process: a job no longer in the jobs file, a disabled job and an HTTP target
no longer configured; the check that still exists keeps its alert. Then a real
`opsbench daemon` process: OPSBENCH_HEALTH_URLS (from its .env) names two
targets that refuse connections, the probes raise their alerts, one target is
taken out of .env and SIGHUP closes that target's alert only. And
`opsbench alerts resolve KEY --reason` closes one alert by hand, recording who
and why. The expected state is read from opsbench.alerts / alert_events /
outbox with plain SQL.
"""

from __future__ import annotations

import datetime as dt
import getpass
import signal

import pytest
import sqlalchemy as sa
from support.daemon_support import DaemonProcess, daemon_env, wait_until, write_jobs_file
from support.fixtures import state  # noqa: F401 - the shared module fixture

from ops.alerting import manager as alerts
from ops.cli import main
from ops.contract import Finding, JobResult, Severity
from ops.core.settings import reset_settings_cache
from ops.daemon import orphan_alerts
from ops.daemon.jobspec import JobSpec
from ops.core.clock import utc_now

UTC = dt.timezone.utc


def _fire(state, source: str, rule: str, labels: dict) -> str:
    alerts.record_result(state.writer, source, JobResult(findings=[
        Finding(rule, Severity.critical, f"{rule} {labels}", labels=labels)]), utc_now(), state.settings)
    return rule + "{" + ",".join(f"{k}={v}" for k, v in labels.items()) + "}"


def _rows(state, sql: str, **params) -> list:
    with state.writer.connect() as c:
        return list(c.execute(sa.text(sql), params))


def _state_of(state, key: str) -> str:
    return _rows(state, "SELECT state FROM opsbench.alerts WHERE key = :k", k=key)[0].state


def _last_event(state, key: str):
    return _rows(state, "SELECT kind, note, outbox_id FROM opsbench.alert_events WHERE key = :k "
                        "ORDER BY id DESC LIMIT 1", k=key)[0]


def _outbox_count(state, kind: str | None = None) -> int:
    """Outbox rows that arrive as messages (kind None: every row but edits of an incident message)."""
    if kind is None:
        return _rows(state, "SELECT count(*) AS n FROM opsbench.outbox WHERE kind <> 'edit'")[0].n
    return _rows(state, f"SELECT count(*) AS n FROM opsbench.outbox WHERE kind = '{kind}'")[0].n


def test_removed_disabled_and_untargeted_checks_close_without_a_page(state):
    gone = _fire(state, "old_job", "stuck_jobs", {"db": "analytics"})
    off = _fire(state, "reconcile", "ledger_drift", {"check": "x"})
    old_target = _fire(state, "http_probes", "health_check_failing", {"probe": "old"})
    kept_target = _fire(state, "http_probes", "health_check_failing", {"probe": "api"})
    assert {r.key for r in alerts.firing(state.writer)} >= {gone, off, old_target, kept_target}
    outbox_before = _outbox_count(state)
    specs = {
        "http_probes": JobSpec(id="http_probes", callable="jobs.probes:http_probes", timezone="UTC", interval_s=60,
                               args={"targets": [{"name": "api", "url": "http://127.0.0.1:1/health"}]}),
        "reconcile": JobSpec(id="reconcile", callable="jobs.reconcile:reconcile", timezone="UTC", interval_s=60,
                               enabled=False),
    }
    closed = orphan_alerts.close_removed(state.writer, specs, utc_now())
    assert sorted(closed) == sorted([gone, off, old_target])
    for key in closed:
        assert _state_of(state, key) == "resolved"
        ev = _last_event(state, key)
        assert (ev.kind, ev.note, ev.outbox_id) == ("closed", "check removed", None)
    assert _state_of(state, kept_target) == "firing"
    assert _outbox_count(state) == outbox_before                       # no RESOLVED page
    assert orphan_alerts.close_removed(state.writer, specs, utc_now()) == []


def test_a_rule_its_job_no_longer_evaluates_closes_after_three_good_runs(state):
    """A check file deleted while its alert fires: the reconcile job keeps running (ok) without that rule.
    One or two such runs may be chance; after three the alert closes as "check removed", without a page."""
    from ops.daemon.runner import Runner

    key = _fire(state, "reconcile", "reconcile_deleted_check", {"check": "deleted_check"})
    spec = JobSpec(id="reconcile", callable="jobs.reconcile:reconcile", timezone="UTC", interval_s=60)
    runner = Runner(state.settings, {spec.id: spec}, state_engine=state.writer)
    # the open alerts of other jobs stay open: their jobs are in the file and evaluate their rules
    specs = {spec.id: spec, **{a.source: JobSpec(id=a.source, callable="jobs.probes:postgres", timezone="UTC",
                                                 interval_s=60)
                               for a in alerts.open_alerts(state.writer) if a.source != spec.id}}
    outbox_before = _outbox_count(state)
    for n in range(1, orphan_alerts.UNEVALUATED_RUNS + 1):
        record = runner.run("reconcile", trigger="manual")
        assert record.status == "ok", record.summary
        assert any(k.startswith("reconcile_") for k in record.metrics) and "reconcile_deleted_check" not in record.metrics
        closed = orphan_alerts.close_removed(state.writer, specs, utc_now())
        if n < orphan_alerts.UNEVALUATED_RUNS:
            assert closed == [] and _state_of(state, key) == "firing"
    assert closed == [key]
    assert _last_event(state, key)[:3] == ("closed", "check removed", None)
    assert _outbox_count(state) == outbox_before


def test_alerts_resolve_by_hand_records_who_and_why(state, capsys, monkeypatch):
    key = _fire(state, "metric_probes", "error_rate_high", {"provider": "x"})
    outbox_before = _outbox_count(state)
    monkeypatch.setenv("DATABASE_URL", state.url)
    monkeypatch.setenv("OPSBENCH_STATE_URL", state.url)
    reset_settings_cache()
    assert main(["alerts", "resolve", key, "--reason", "provider fixed it"]) == 0
    assert _state_of(state, key) == "resolved"
    ev = _last_event(state, key)
    assert ev.kind == "closed" and ev.note == f"resolved by hand by {getpass.getuser()}: provider fixed it"
    assert _outbox_count(state) == outbox_before          # no RESOLVED page ...
    assert _outbox_count(state, "edit") == 1              # ... but its Telegram message now says it is over
    assert main(["alerts", "resolve", key]) == 2                        # no longer open: one line, exit 2
    assert "no pending or firing alert" in capsys.readouterr().err


JOBS = """
[jobs.http_probes]
callable = "jobs.probes:http_probes"
interval = "1h"
timeout = 30
catch_up = false
[jobs.http_probes.args]
timeout_s = 2
"""


def test_sighup_closes_the_alert_of_a_target_taken_out_of_opsbench_health_urls(state, tmp_path, pg_home):
    env = daemon_env(state.url, pg_home, write_jobs_file(tmp_path / "jobs.toml", JOBS))
    (tmp_path / ".env").write_text("OPSBENCH_HEALTH_URLS=one=http://127.0.0.1:1/health,two=http://127.0.0.1:2/h\n")
    proc = DaemonProcess(env, tmp_path, "hup")
    one, two = "health_check_failing{probe=one}", "health_check_failing{probe=two}"
    try:
        wait_until(lambda: {one, two} <= {r.key for r in alerts.firing(state.writer)}, 60,
                   what="both targets' alerts firing")
        # and their FIRING message queued, so what follows the reload is told apart from it
        wait_until(lambda: any("probe=two" in (r.body or "") for r in _rows(state, "SELECT body FROM opsbench.outbox")),
                   30, what="the FIRING message")
        outbox_before = _rows(state, "SELECT count(*) AS n FROM opsbench.outbox")[0].n
        (tmp_path / ".env").write_text("OPSBENCH_HEALTH_URLS=one=http://127.0.0.1:1/health\n")
        proc.signal(signal.SIGHUP)
        wait_until(lambda: _state_of(state, two) == "resolved", 60, what="target two's alert closed")
        # the reload logs its line after it closed the alerts: wait for it rather than read the log at once
        wait_until(lambda: "SIGHUP: jobs file reloaded" in proc.output(), 60, what="the SIGHUP line")
        proc.signal(signal.SIGTERM)
        assert proc.wait(60) == 0, proc.output()[-3000:]
    finally:
        proc.kill()
    ev = _last_event(state, two)
    assert (ev.kind, ev.note) == ("closed", "check removed")
    assert _state_of(state, one) == "firing"
    # nothing is sent for target two after the reload: no message, reply or edit names it
    later = _rows(state, "SELECT o.kind, o.body FROM opsbench.outbox o ORDER BY o.id OFFSET :n", n=outbox_before)
    assert not any("probe=two" in (r.body or "") or "RESOLVED" in (r.body or "").upper() for r in later), later

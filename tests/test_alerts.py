"""The alert manager: lifecycle, flapping, grouping, dependencies, silences, quiet hours, message content."""

from __future__ import annotations

import datetime as dt

import pytest
from support.botapi import parse_html

from ops.alerting import channels, outbox
from ops.alerting import manager as alerts
from ops.alerting.manager import RuleConfig
from ops.contract import Finding, JobResult

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)
STEP = dt.timedelta(minutes=5)


def bad(rule="error_rate", severity="warning", summary="error rate 7.5 % over 1 h", **kw) -> JobResult:
    return JobResult(findings=[Finding(rule=rule, severity=severity, summary=summary, **kw)], rules={rule})


def good(*rules) -> JobResult:
    return JobResult(rules=set(rules or {"error_rate"}))


def sent_messages(engine) -> list:
    """What arrives in the chat as a message, oldest first: edits of an incident message are not new messages
    (test_incident_messages.py checks those)."""
    return [m for m in reversed(outbox.recent(engine, 1000)) if m.kind != "edit"]


def test_lifecycle_pending_firing_repeat_resolved(state):
    settings = state.settings()
    cfg = {"error_rate": RuleConfig(fire_after=3, resolve_after=2, repeat_every=dt.timedelta(hours=4))}
    now = T0
    kinds = []
    for i in range(2):
        (t,) = alerts.record_result(state.engine, "probe", bad(), now, settings, cfg)
        kinds.append((t.to_state, t.notified))
        now += STEP
    assert kinds == [("pending", None), ("pending", None)]
    assert sent_messages(state.engine) == []
    (t,) = alerts.record_result(state.engine, "probe", bad(), now, settings, cfg)
    assert (t.from_state, t.to_state, t.notified) == ("pending", "firing", "firing")
    fired_at = now
    assert len(sent_messages(state.engine)) == 1
    # still bad for a while: no new message before the repeat interval
    while now < fired_at + dt.timedelta(hours=4) - STEP:
        now += STEP
        (t,) = alerts.record_result(state.engine, "probe", bad(), now, settings, cfg)
        assert t.notified is None
    now = fired_at + dt.timedelta(hours=4)
    (t,) = alerts.record_result(state.engine, "probe", bad(), now, settings, cfg)
    assert t.notified == "repeat"
    msgs = sent_messages(state.engine)
    assert len(msgs) == 2 and "STILL FIRING" in msgs[1].body and "Firing for 4h 10m" in msgs[1].body
    # one good evaluation is not enough
    now += STEP
    (t,) = alerts.record_result(state.engine, "probe", good(), now, settings, cfg)
    assert (t.to_state, t.notified) == ("firing", None)
    now += STEP
    (t,) = alerts.record_result(state.engine, "probe", good(), now, settings, cfg)
    assert (t.from_state, t.to_state, t.notified) == ("firing", "resolved", "resolved")
    first_bad = T0
    assert t.duration == now - first_bad
    msgs = sent_messages(state.engine)
    assert len(msgs) == 3
    hours, rem = divmod(int((now - first_bad).total_seconds()), 3600)
    assert f"Resolved after {hours}h {rem // 60}m" in msgs[2].body
    assert alerts.firing(state.engine) == []
    history = [e.kind for e in reversed(alerts.recent(state.engine, 50))]
    assert history == ["pending", "firing", "repeat", "resolved"]


def test_pending_that_clears_sends_nothing(state):
    settings = state.settings()
    cfg = {"error_rate": RuleConfig(fire_after=2)}
    alerts.record_result(state.engine, "probe", bad(), T0, settings, cfg)
    (t,) = alerts.record_result(state.engine, "probe", good(), T0 + STEP, settings, cfg)
    assert (t.from_state, t.to_state) == ("pending", "inactive")
    # the streak restarts: one more bad is pending again, not firing
    (t,) = alerts.record_result(state.engine, "probe", bad(), T0 + 2 * STEP, settings, cfg)
    assert t.to_state == "pending"
    assert sent_messages(state.engine) == []


def test_flapping_sends_one_message(state):
    settings = state.settings()
    now = T0
    for i in range(20):
        alerts.record_result(state.engine, "probe", bad() if i % 2 == 0 else good(), now, settings)
        now += STEP
    msgs = sent_messages(state.engine)
    assert len(msgs) == 1 and "FIRING" in msgs[0].body
    assert [a.key for a in alerts.firing(state.engine)] == ["error_rate"]


def test_rule_not_evaluated_is_left_alone(state):
    settings = state.settings()
    alerts.record_result(state.engine, "probe", bad(), T0, settings)
    for i in range(3):
        alerts.record_result(state.engine, "cleanup", good("stale_rows"), T0 + (i + 1) * STEP, settings)
    assert [a.key for a in alerts.firing(state.engine)] == ["error_rate"]


def test_only_the_raising_source_clears_an_alert(state):
    """job_failed{job=a} is not resolved by job b's good runs of the same rule."""
    settings = state.settings()
    now = T0
    alerts.record_result(state.engine, "a", bad(rule="job_failed", labels={"job": "a"}), now, settings)
    for _ in range(5):
        now += STEP
        assert alerts.record_result(state.engine, "b", good("job_failed"), now, settings) == []
    assert [a.key for a in alerts.firing(state.engine)] == ["job_failed{job=a}"]
    for _ in range(2):
        now += STEP
        alerts.record_result(state.engine, "a", good("job_failed"), now, settings)
    assert alerts.firing(state.engine) == []


def test_same_evaluation_grouped_in_one_message(state):
    settings = state.settings()
    findings = [
        Finding(rule="credit_drift", severity="critical", summary="7 users drift", labels={"kind": "balance"}),
        Finding(rule="failed_without_refund", severity="warning", summary="3 jobs"),
        Finding(rule="stuck_jobs", severity="info", summary="2 jobs stuck", labels={"provider": "runway"}),
    ]
    ts = alerts.record_result(state.engine, "reconcile", JobResult(findings=findings), T0, settings)
    assert {t.notified for t in ts} == {"firing"}
    (msg,) = sent_messages(state.engine)
    assert "3 alerts" in msg.body
    for key in ("credit_drift{kind=balance}", "failed_without_refund", "stuck_jobs{provider=runway}"):
        assert key in msg.body
    parse_html(msg.body)
    assert all(t.outbox_ids == ts[0].outbox_ids for t in ts)
    # later: one resolves while two are re-announced -> still one message
    later = T0 + dt.timedelta(hours=4)
    result = JobResult(findings=findings[:2], rules={"credit_drift", "failed_without_refund", "stuck_jobs"})
    alerts.record_result(state.engine, "reconcile", result, later - STEP, settings)
    assert len(sent_messages(state.engine)) == 1
    ts = alerts.record_result(state.engine, "reconcile", result, later, settings)
    assert sorted(t.notified for t in ts) == ["repeat", "repeat", "resolved"]
    msgs = sent_messages(state.engine)
    assert len(msgs) == 2
    # one short reply to the incident's message: what resolved, then what still fires
    assert msgs[1].kind == "reply" and msgs[1].body.count("STILL FIRING") == 2
    assert msgs[1].body.index("RESOLVED") < msgs[1].body.index("stuck_jobs") < msgs[1].body.index("STILL FIRING")
    assert "credit_drift" in msgs[1].body and "failed_without_refund" in msgs[1].body


def test_dependency_suppression(state):
    settings = state.settings()
    root = bad("database_unreachable", "critical", "analytics database unreachable: connection refused")
    (t,) = alerts.record_result(state.engine, "probe", root, T0, settings)
    assert t.notified == "firing"
    dependents = JobResult(findings=[
        Finding(rule=f"check_{i}", severity="warning", summary=f"check {i} failed", requires=("database_unreachable",))
        for i in range(20)])
    ts = alerts.record_result(state.engine, "reconcile", dependents, T0 + STEP, settings)
    assert {(t.to_state, t.notified, t.held) for t in ts} == {("firing", None, "suppressed")}
    assert len(sent_messages(state.engine)) == 1  # one root-cause message, not twenty-one
    # still down: dependents stay held and are not noted again
    alerts.record_result(state.engine, "reconcile", dependents, T0 + 2 * STEP, settings)
    assert len(sent_messages(state.engine)) == 1
    suppressed = [e for e in alerts.recent(state.engine, 100) if e.kind == "suppressed"]
    assert len(suppressed) == 20 and all("database_unreachable" in e.note for e in suppressed)
    # the database comes back
    alerts.record_result(state.engine, "probe", good("database_unreachable"), T0 + 3 * STEP, settings)
    (t,) = alerts.record_result(state.engine, "probe", good("database_unreachable"), T0 + 4 * STEP, settings)
    assert t.notified == "resolved"
    # dependents still failing on their own: now they are announced, in one message
    ts = alerts.record_result(state.engine, "reconcile", dependents, T0 + 5 * STEP, settings)
    assert {t.notified for t in ts} == {"firing"}
    msgs = sent_messages(state.engine)
    assert len(msgs) == 3 and "20 alerts" in msgs[2].body


def test_dependents_that_recover_while_held_send_nothing(state):
    settings = state.settings()
    alerts.record_result(state.engine, "probe", bad("database_unreachable", "critical"), T0, settings)
    dep = JobResult(findings=[Finding(rule="revenue_gap", severity="warning", summary="x",
                                      requires=("database_unreachable",))], rules={"revenue_gap"})
    alerts.record_result(state.engine, "jobs", dep, T0 + STEP, settings)
    # never announced: its own check finding it gone closes it at once, silently
    (t,) = alerts.record_result(state.engine, "jobs", good("revenue_gap"), T0 + 2 * STEP, settings)
    assert (t.to_state, t.notified) == ("resolved", None)
    assert alerts.record_result(state.engine, "jobs", good("revenue_gap"), T0 + 3 * STEP, settings) == []
    assert len(sent_messages(state.engine)) == 1


def test_silence_by_pattern_until_end(state):
    settings = state.settings()
    sid = alerts.add_silence(state.engine, "credit_*", T0 + dt.timedelta(hours=2), "migrating ledger", T0)
    result = JobResult(findings=[
        Finding(rule="credit_drift", severity="critical", summary="drift", labels={"kind": "balance"}),
        Finding(rule="error_rate", severity="warning", summary="errors"),
    ])
    ts = {t.key: t for t in alerts.record_result(state.engine, "reconcile", result, T0 + STEP, settings)}
    assert ts["credit_drift{kind=balance}"].held == "silenced"
    assert ts["error_rate"].notified == "firing"
    (msg,) = sent_messages(state.engine)
    assert "credit_drift" not in msg.body
    event = next(e for e in alerts.recent(state.engine, 10) if e.kind == "silenced")
    assert f"silence {sid}" in event.note and "migrating ledger" in event.note
    assert [s.id for s in alerts.active_silences(state.engine, T0 + STEP)] == [sid]
    # after the end time the still-firing alert is announced
    after = T0 + dt.timedelta(hours=2, minutes=5)
    assert alerts.active_silences(state.engine, after) == []
    ts = {t.key: t for t in alerts.record_result(state.engine, "reconcile", result, after, settings)}
    assert ts["credit_drift{kind=balance}"].notified == "firing"
    assert "credit_drift" in sent_messages(state.engine)[-1].body


def test_unsilence(state):
    settings = state.settings()
    sid = alerts.add_silence(state.engine, "error_*", T0 + dt.timedelta(hours=8), "noisy", T0)
    (t,) = alerts.record_result(state.engine, "probe", bad(), T0 + STEP, settings)
    assert t.held == "silenced"
    assert alerts.remove_silence(state.engine, sid, T0 + 2 * STEP) is True
    assert alerts.remove_silence(state.engine, sid, T0 + 2 * STEP) is False
    (t,) = alerts.record_result(state.engine, "probe", bad(), T0 + 3 * STEP, settings)
    assert t.notified == "firing"


@pytest.mark.parametrize("utc_hour, severity, silent", [
    (21, "warning", True),    # 00:30 in Istanbul: quiet
    (21, "critical", False),  # critical always rings
    (3, "info", True),        # 06:30 local: still quiet
    (4, "warning", False),    # 07:30 local: awake
    (12, "warning", False),
])
def test_quiet_hours(state, utc_hour, severity, silent):
    settings = state.settings(OPSBENCH_QUIET_HOURS="23:00-07:00", REPORT_TZ="Europe/Istanbul")
    now = dt.datetime(2026, 3, 2, utc_hour, 30, tzinfo=dt.timezone.utc)
    alerts.record_result(state.engine, "probe", bad(severity=severity), now, settings)
    (msg,) = sent_messages(state.engine)
    assert msg.silent is silent


def test_quiet_delivery_reaches_telegram(state, api, clock):
    settings = state.telegram_settings(api, OPSBENCH_QUIET_HOURS="22:00-06:00")
    alerts.record_result(state.engine, "probe", bad(), dt.datetime(2026, 3, 2, 23, 0, tzinfo=dt.timezone.utc),
                         settings)
    channel = channels.from_settings(settings, state.engine, clock=clock.monotonic, sleep=clock.sleep)
    later = dt.datetime(2026, 3, 2, 23, 1, tzinfo=dt.timezone.utc)
    assert outbox.drain(settings, state.engine, channel, clock=lambda: later, sleep=clock.sleep) == 1
    assert api.delivered[0].params["disable_notification"] is True


def test_firing_message_carries_evidence_and_command(state):
    settings = state.settings(ENVIRONMENT="production")
    rows = [{"user_id": f"u_{i}", "credits": i * 10, "ledger_sum": i * 10 - 5, "note": "<b>&_*[x]"} for i in range(17)]
    finding = Finding(rule="credit_drift", severity="critical", summary="17 users: balance ≠ ledger sum",
                      details="balance minus ledger, per user", evidence=rows[:8], evidence_count=17,
                      command="opsbench run reconcile --dry-run")
    alerts.record_result(state.engine, "reconcile", JobResult(findings=[finding]), T0, settings)
    (msg,) = sent_messages(state.engine)
    body = msg.body
    visible = parse_html(body)  # valid Telegram HTML despite the data
    assert "Evidence (5 of 17 rows):" in visible
    for i in range(5):
        assert f"user_id=u_{i}, credits={i * 10}, ledger_sum={i * 10 - 5}, note=<b>&_*[x]" in visible
    assert "u_5" not in visible
    assert "Reproduce: opsbench run reconcile --dry-run" in visible
    assert "production" in visible and "17 users: balance ≠ ledger sum" in visible
    firing = alerts.firing(state.engine)
    assert [(a.key, a.evidence_count, a.command) for a in firing] == [
        ("credit_drift", 17, "opsbench run reconcile --dry-run")]


def test_state_and_message_in_one_transaction(state, monkeypatch):
    settings = state.settings()

    def broken(*a, **k):
        raise RuntimeError("outbox write failed")

    monkeypatch.setattr(outbox, "enqueue", broken)
    monkeypatch.setattr(outbox, "publish", broken)   # the manager's notices go through publish
    with pytest.raises(RuntimeError):
        alerts.record_result(state.engine, "probe", bad(), T0, settings)
    monkeypatch.undo()
    assert alerts.firing(state.engine) == [] and alerts.recent(state.engine) == []
    # the next evaluation fires and announces it: nothing was half-written
    (t,) = alerts.record_result(state.engine, "probe", bad(), T0 + STEP, settings)
    assert (t.from_state, t.notified) == ("none", "firing")


def test_quiet_hours_setting_validated(monkeypatch):
    from ops.core.settings import SettingsError, load_settings

    monkeypatch.setenv("OPSBENCH_QUIET_HOURS", "11pm-7am")
    with pytest.raises(SettingsError, match=r"^OPSBENCH_QUIET_HOURS: expected HH:MM-HH:MM"):
        load_settings()


def _outage(state, job_recovers: bool):
    """A backend outage as the alert manager sees it: the probe's root cause, and a job failing behind it."""
    settings = state.settings()
    down = bad("database_unreachable", "critical", "backend unreachable", labels={"db": "backend"})
    job_failed = JobResult(status="failed", rules={"job_failed"}, findings=[Finding(
        "job_failed", "warning", "job nightly raised OperationalError", labels={"job": "nightly"},
        requires=("database_unreachable",))])
    now = T0
    alerts.record_result(state.engine, "postgres_probe", down, now, settings)
    now += STEP
    alerts.record_result(state.engine, "nightly", job_failed, now, settings)   # held behind the root cause
    for _ in range(2):                                                        # the backend is back
        now += STEP
        alerts.record_result(state.engine, "postgres_probe", good("database_unreachable"), now, settings)
    transitions = []
    for _ in range(2):                                                        # the job's next runs
        now += dt.timedelta(hours=24)
        result = JobResult(rules={"job_failed"}) if job_recovers else job_failed
        transitions += alerts.record_result(state.engine, "nightly", result, now, settings)
    return transitions


def test_an_outage_pages_its_root_cause_only_and_held_jobs_close_silently(state):
    """Exactly FIRING and RESOLVED of the root cause; the job that failed behind it is never announced."""
    transitions = _outage(state, job_recovers=True)
    bodies = [parse_html(m.body) for m in sent_messages(state.engine)]
    assert len(bodies) == 2, bodies
    assert "FIRING" in bodies[0] and "database_unreachable" in bodies[0]
    assert "RESOLVED" in bodies[1] and "database_unreachable" in bodies[1]
    # the RESOLVED names what the outage held back, as one line; nothing else mentions it
    assert "Held back while it lasted" in bodies[1] and "job_failed{job=nightly}" in bodies[1]
    assert "nightly" not in bodies[0]
    assert [(t.key, t.to_state, t.notified) for t in transitions][0] == \
        ("job_failed{job=nightly}", "resolved", None)
    assert "job_failed{job=nightly}" not in {a.key for a in alerts.firing(state.engine)}


def test_a_held_alert_that_still_holds_after_the_outage_is_announced(state):
    transitions = _outage(state, job_recovers=False)
    assert [(t.key, t.notified) for t in transitions][0] == ("job_failed{job=nightly}", "firing")
    bodies = [parse_html(m.body) for m in sent_messages(state.engine)]
    assert "nightly" in bodies[2] and "FIRING" in bodies[2]
    assert "nightly" not in bodies[0]   # only the RESOLVED's "held back" line named it before


def test_flapping_is_announced_once_then_held_until_it_stays_put(state):
    """A check flipping every few minutes: FIRING/RESOLVED until the flap limit, then one FLAPPING
    message, nothing while it keeps flipping, and its state once it has been calm for flap_calm."""
    settings = state.settings()
    cfg = {"error_rate": RuleConfig(fire_after=1, resolve_after=1, flap_changes=4,
                                    flap_window=dt.timedelta(hours=1), flap_calm=dt.timedelta(minutes=30))}
    now = T0
    for i in range(12):   # bad, good, bad, good ... every 5 minutes for an hour
        alerts.record_result(state.engine, "probe", bad() if i % 2 == 0 else good(), now, settings, cfg)
        now += STEP
    bodies = [parse_html(m.body) for m in sent_messages(state.engine)]
    kinds = [b.split(" · ")[0].split()[-1] for b in bodies]
    assert kinds == ["FIRING", "RESOLVED", "FIRING", "FLAPPING"], bodies
    assert "stays put for 30m" in bodies[-1] or "stays put for 30 min" in bodies[-1]
    # now it stays bad: nothing until 30 minutes without a change, then FIRING once
    sent = len(bodies)
    calm_from = now
    while now - calm_from < dt.timedelta(minutes=25):
        alerts.record_result(state.engine, "probe", bad(), now, settings, cfg)
        now += STEP
    assert len(sent_messages(state.engine)) == sent
    for _ in range(3):
        alerts.record_result(state.engine, "probe", bad(), now, settings, cfg)
        now += STEP
    bodies = [parse_html(m.body) for m in sent_messages(state.engine)]
    assert len(bodies) == sent + 1 and "FIRING" in bodies[-1]
    assert alerts.firing(state.engine)[0].held_reason is None


def test_flap_limit_setting_is_checked():
    from ops.core.settings import SettingsError, load_settings

    assert load_settings(OPSBENCH_FLAP_CHANGES="0").flap_changes == 0
    with pytest.raises(SettingsError, match="OPSBENCH_FLAP_CHANGES"):
        load_settings(OPSBENCH_FLAP_CHANGES="1")


def test_error_rate_keeps_firing_for_30_minutes(state):
    # keep_firing_for: the job error rate (judged on sampled counts) needs six good evaluations, not two
    settings = state.settings()
    now = T0 + dt.timedelta(days=30)
    (t,) = alerts.record_result(state.engine, "metric_probes", bad(rule="job_error_rate"), now, settings)
    assert t.notified == "firing"
    for i in range(5):
        now += STEP
        (t,) = alerts.record_result(state.engine, "metric_probes", good("job_error_rate"), now, settings)
        assert (t.to_state, t.notified) == ("firing", None), i
    now += STEP
    (t,) = alerts.record_result(state.engine, "metric_probes", good("job_error_rate"), now, settings)
    assert (t.to_state, t.notified) == ("resolved", "resolved")
    assert alerts.rule_config("error_rate").resolve_after == 2

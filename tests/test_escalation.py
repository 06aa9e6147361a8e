"""Escalation: a critical alert nobody acked is sent again as a new, ringing message, once more later,
and an ack, a silence or its resolution stops it. Every time here comes from an injected clock."""

from __future__ import annotations

import datetime as dt

import pytest
import queries

from ops.alerting import bridge, channels, outbox
from ops.alerting import manager as alerts
from ops.contract import Finding, JobResult
from ops.core.settings import SettingsError, load_settings

T0 = dt.datetime(2026, 3, 2, 3, 2, tzinfo=dt.timezone.utc)
MIN = dt.timedelta(minutes=1)


def bad(severity="critical") -> JobResult:
    return JobResult(findings=[Finding(rule="negative_balance", severity=severity, summary="2 users below zero",
                                       evidence=[{"user_id": 17, "balance": -40}])], rules={"negative_balance"})


def good() -> JobResult:
    return JobResult(rules={"negative_balance"})


def rows(state):
    return list(reversed(outbox.recent(state.engine, 1000)))


def escalations(state):
    return [r for r in rows(state) if r.source == "alerts:escalation"]


def test_the_schedule_is_a_pure_function_of_the_times():
    after = dt.timedelta(minutes=15)
    assert not alerts.escalation_due(T0, [], after, T0 + 14 * MIN)
    assert alerts.escalation_due(T0, [], after, T0 + 15 * MIN)
    first = T0 + 16 * MIN
    assert not alerts.escalation_due(T0, [first], after, first + 29 * MIN)
    assert alerts.escalation_due(T0, [first], after, first + 30 * MIN)
    assert not alerts.escalation_due(T0, [first, first + 30 * MIN], after, T0 + dt.timedelta(days=3))


def test_unacked_critical_escalates_twice_loudly_and_the_incident_message_says_when(state):
    settings = state.settings(OPSBENCH_QUIET_HOURS="22:00-06:00")   # 03:02 UTC: quiet hours
    alerts.record_result(state.engine, "reconcile", bad(), T0, settings)
    assert alerts.escalate(state.engine, settings, T0 + 14 * MIN) == []
    assert alerts.escalate(state.engine, settings, T0 + 15 * MIN) == ["negative_balance"]
    (loud, edit) = escalations(state)
    assert loud.kind == "text" and loud.silent is False          # rings even in quiet hours
    assert "ESCALATED" in loud.body and "negative_balance" in loud.body and "user_id=17" in loud.body
    assert "Firing for 15m, and nobody has acked it." in loud.body
    assert edit.kind == "edit" and "Escalated at 03:17" in edit.body
    # not again before twice the delay has passed since the first; then once more; then never
    assert alerts.escalate(state.engine, settings, T0 + 44 * MIN) == []
    assert alerts.escalate(state.engine, settings, T0 + 45 * MIN) == ["negative_balance"]
    assert "Escalated at 03:17, again at 03:47" in escalations(state)[-1].body
    assert alerts.escalate(state.engine, settings, T0 + dt.timedelta(hours=6)) == []
    assert len([r for r in escalations(state) if r.kind == "text"]) == 2
    kinds = [e.kind for e in alerts.recent(state.engine, 50)]
    assert kinds.count("escalated") == 2


@pytest.mark.parametrize("stop", ["ack", "silence", "resolved", "warning", "off"])
def test_ack_silence_or_resolution_stop_it(state, stop):
    settings = state.settings(OPSBENCH_ESCALATE_AFTER="0") if stop == "off" else state.settings()
    alerts.record_result(state.engine, "reconcile", bad("warning" if stop == "warning" else "critical"), T0,
                         settings)
    if stop == "ack":
        with state.engine.begin() as conn:
            (iid,) = [r.incident_id for r in alerts.firing(state.engine)]
            queries.load("state/incidents").ack.execute(conn, id=iid, by="@founder", at=T0 + 5 * MIN)
    elif stop == "silence":
        alerts.add_silence(state.engine, "negative_balance", T0 + dt.timedelta(hours=4), "on it", T0 + 5 * MIN)
    elif stop == "resolved":
        for i in (1, 2):
            alerts.record_result(state.engine, "reconcile", good(), T0 + i * 5 * MIN, settings)
    assert alerts.escalate(state.engine, settings, T0 + 16 * MIN) == []
    assert alerts.escalate(state.engine, settings, T0 + dt.timedelta(hours=2)) == []
    assert escalations(state) == []


def test_a_new_episode_escalates_afresh(state):
    settings = state.settings(OPSBENCH_ESCALATE_AFTER="10m")
    alerts.record_result(state.engine, "reconcile", bad(), T0, settings)
    assert alerts.escalate(state.engine, settings, T0 + 10 * MIN) == ["negative_balance"]
    for i in (1, 2):
        alerts.record_result(state.engine, "reconcile", good(), T0 + (10 + i) * MIN, settings)
    later = T0 + dt.timedelta(hours=1)
    alerts.record_result(state.engine, "reconcile", bad(), later, settings)
    assert alerts.escalate(state.engine, settings, later + 9 * MIN) == []
    assert alerts.escalate(state.engine, settings, later + 10 * MIN) == ["negative_balance"]


def test_the_drain_escalates_and_telegram_rings_with_a_new_message(state, api, clock):
    settings = state.telegram_settings(api)
    alerts.record_result(state.engine, "reconcile", bad(), clock.now(), settings)
    channel = channels.from_settings(settings, state.engine, clock=clock.monotonic, sleep=clock.sleep)
    assert outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep) == 1
    first = api.delivered[-1]
    clock.advance(16 * 60)

    class Shared:
        def shared(self, key, make):
            return [channel]

    assert bridge.drain(settings, state.engine, clock=clock.now, runtime=Shared()) == 2
    loud = next(r for r in api.delivered if r.method == "sendMessage" and r is not first)
    assert "ESCALATED" in loud.params["text"]
    assert "disable_notification" not in loud.params and "reply_parameters" not in loud.params
    assert any(b["text"] == "👀 Ack" for row in loud.params["reply_markup"]["inline_keyboard"] for b in row)
    edit = next(r for r in api.requests if r.method == "editMessageText")
    assert "Escalated at" in edit.params["text"]


def test_the_setting_is_checked():
    assert load_settings().escalation_delay == dt.timedelta(minutes=15)
    assert load_settings(OPSBENCH_ESCALATE_AFTER="1h").escalation_delay == dt.timedelta(hours=1)
    assert load_settings(OPSBENCH_ESCALATE_AFTER="0").escalation_delay is None
    with pytest.raises(SettingsError) as err:
        load_settings(OPSBENCH_ESCALATE_AFTER="soon")
    assert str(err.value).startswith("OPSBENCH_ESCALATE_AFTER: expected a duration")

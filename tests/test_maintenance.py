"""Maintenance windows: the schedule in the founder's zone, the holds through the real alert manager on a
real state store, the summary when a window closes, and the CLI."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ops.alerting import maintenance, maintenance_store, outbox
from ops.alerting import manager as alerts
from ops.alerting.lifecycle import MemoryStore, Silence
from ops.contract import Finding, JobResult

BERLIN = ZoneInfo("Europe/Berlin")
# Monday 2027-01-04 10:00 UTC = 11:00 in Berlin
T0 = dt.datetime(2027, 1, 4, 10, 0, tzinfo=dt.timezone.utc)
STEP = dt.timedelta(minutes=5)


def local(y, m, d, hh, mm, zone=BERLIN) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=zone)


def bad(rule="error_rate", severity="warning") -> JobResult:
    return JobResult(findings=[Finding(rule=rule, severity=severity, summary=f"{rule} is bad")], rules={rule})


def good(*rules) -> JobResult:
    return JobResult(rules=set(rules or {"error_rate"}))


# -- the schedule --------------------------------------------------------------

def test_a_weekly_window_is_in_force_on_its_day_and_hours_in_the_founders_zone():
    s = maintenance.parse("Sun 02:00-03:00", T0, BERLIN)
    sunday = local(2027, 1, 10, 2, 30)
    assert s.occurrence_at(sunday, BERLIN) == (local(2027, 1, 10, 2, 0), local(2027, 1, 10, 3, 0))
    assert s.occurrence_at(local(2027, 1, 10, 3, 0), BERLIN) is None            # the end is not inside
    assert s.occurrence_at(local(2027, 1, 10, 1, 59), BERLIN) is None
    assert s.occurrence_at(local(2027, 1, 9, 2, 30), BERLIN) is None            # Saturday
    # 02:30 in Berlin is 01:30 UTC: the window is placed in Berlin, not in UTC
    assert s.occurrence_at(dt.datetime(2027, 1, 10, 1, 30, tzinfo=dt.timezone.utc), BERLIN) is not None
    assert s.next_after(T0, BERLIN) == (local(2027, 1, 10, 2, 0), local(2027, 1, 10, 3, 0))


def test_a_window_across_midnight_and_a_range_of_days():
    late = maintenance.parse("Sat 23:30-00:30", T0, BERLIN)
    assert late.occurrence_at(local(2027, 1, 10, 0, 15), BERLIN) == (local(2027, 1, 9, 23, 30), local(2027, 1, 10, 0, 30))
    weekdays = maintenance.parse("Mon-Fri 12:00-12:15", T0, BERLIN)
    assert [weekdays.occurrence_at(local(2027, 1, d, 12, 5), BERLIN) is not None for d in range(4, 11)] == \
        [True] * 5 + [False] * 2
    daily = maintenance.parse("daily 03:00-03:30", T0, BERLIN)
    assert len(daily.ended_between(T0, T0 + dt.timedelta(days=3), BERLIN)) == 3


def test_one_off_windows_from_now_or_on_a_date():
    s = maintenance.parse("30m", T0, BERLIN)
    assert (s.starts_at, s.ends_at) == (T0, T0 + dt.timedelta(minutes=30))
    d = maintenance.parse("2027-01-05 02:00-03:00", T0, BERLIN)
    assert (d.starts_at, d.ends_at) == (local(2027, 1, 5, 2, 0), local(2027, 1, 5, 3, 0))
    assert d.ended_between(T0, local(2027, 1, 5, 3, 0), BERLIN) == [(d.starts_at, d.ends_at)]


@pytest.mark.parametrize("text, words", [
    ("Sun 02:00", "expected a length from now"), ("Sun 25:00-26:00", "not a time of day"),
    ("Sonntag 02:00-03:00", "not a day of the week"), ("Sun 02:00-02:00", "same time"),
    ("2026-12-01 02:00-03:00", "already ended"), ("soon", "expected a length from now")])
def test_a_bad_schedule_is_one_line_saying_what_was_expected(text, words):
    with pytest.raises(ValueError, match=words) as err:
        maintenance.parse(text, T0, BERLIN)
    assert len(str(err.value).splitlines()) == 1


def test_the_lifecycle_holds_alerts_below_critical_or_the_named_ones():
    every = Silence(1, "", "deploy", kind="maintenance")
    store = MemoryStore(silences=[every])
    warn = store.record("probe", bad(), T0)
    crit = store.record("db", bad("db_down", "critical"), T0)
    assert warn.notices == [] and warn.transitions["error_rate"].held == "silenced"
    assert [n.kind for n in crit.notices] == ["firing"]
    named = MemoryStore(silences=[Silence(2, "db_*", "migration", kind="maintenance", patterns=("db_*",))])
    assert named.record("db", bad("db_down", "critical"), T0).notices == []
    assert [n.kind for n in named.record("probe", bad(), T0).notices] == ["firing"]


# -- through the alert manager on a real state store ----------------------------------------------

def _messages(engine) -> list:
    return [m for m in reversed(outbox.recent(engine, 1000)) if m.kind != "edit"]


def test_a_window_holds_then_summarises_and_the_still_firing_alert_is_announced(state):
    settings = state.settings(REPORT_TZ="Europe/Berlin")
    start = T0 + STEP
    wid, _ = maintenance_store.add(state.engine, "2027-01-04 11:05-11:35", "deploy", BERLIN, T0)
    # before the window: nothing held
    assert alerts.record_result(state.engine, "probe", good(), T0, settings) == []
    now = start
    for _ in range(3):   # inside: a warning fires and is held; a critical is not
        (t,) = alerts.record_result(state.engine, "probe", bad(), now, settings)
        assert t.to_state == "firing" and t.held == "silenced" and t.notified is None
        now += STEP
    (c,) = alerts.record_result(state.engine, "db", bad("db_down", "critical"), now, settings)
    assert c.notified == "firing"
    alerts.record_result(state.engine, "db", good("db_down"), now + STEP, settings)
    alerts.record_result(state.engine, "db", good("db_down"), now + 2 * STEP, settings)
    before = len(_messages(state.engine))
    # the first evaluation after the window: the warning is announced, and one summary lists it
    after = start + dt.timedelta(minutes=30)
    (t,) = alerts.record_result(state.engine, "probe", bad(), after, settings)
    assert t.notified == "firing"
    new = _messages(state.engine)[before:]
    summaries = [m for m in new if "Maintenance window closed" in m.body]
    assert len(summaries) == 1, [m.body for m in new]
    body = summaries[0].body
    assert "deploy" in body and "error_rate" in body and "still firing" in body and "db_down" not in body
    # the summary is sent once
    alerts.record_result(state.engine, "probe", bad(), after + STEP, settings)
    assert sum("Maintenance window closed" in m.body for m in _messages(state.engine)) == 1
    assert wid not in [w.id for w in maintenance_store.active(state.engine)]   # a one-off, summarised, is done


def test_the_cli_adds_lists_and_removes_windows_and_alerts_shows_them(state, monkeypatch, capsys):
    from ops.cli import main

    monkeypatch.setenv("OPSBENCH_STATE_URL", state.url)
    monkeypatch.setenv("REPORT_TZ", "Europe/Berlin")
    assert main(["maintenance", "add", "Sun 02:00-03:00", "--reason", "weekly deploy"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("maintenance #") and "Sun 02:00-03:00 (Europe/Berlin)" in out and "below critical" in out
    assert main(["maintenance", "add", "Sun 02:00", "--reason", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "WHEN" in err[0] and "Sun 02:00-03:00" in err[0]
    assert main(["maintenance", "add", "45m", "--reason", "migration", "--rules", "db_*,job_*"]) == 0
    capsys.readouterr()
    assert main(["maintenance", "list"]) == 0
    listed = capsys.readouterr().out
    assert "weekly deploy" in listed and "db_*, job_*" in listed and "in force until" in listed
    assert main(["alerts"]) in (0, 1)
    shown = capsys.readouterr().out
    assert "Maintenance windows (2):" in shown and "migration" in shown
    wid = int(listed.split("#")[1].split()[0])
    assert main(["maintenance", "remove", str(wid)]) == 0
    assert main(["maintenance", "remove", str(wid)]) == 2

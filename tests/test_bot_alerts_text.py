"""Telegram /alerts on a phone: one short line per alert, the first ten, not a 3,000-character wall.

Twenty-four alerts with long summaries are recorded in a real state store; the expected lines are
worked out here from what was recorded (the counts, the keys and the words of each summary).
"""

from __future__ import annotations

from support.alerting_support import state  # noqa: F401 - the per-test state store
from support.botapi import parse_html

from ops.alerting.telegram import bot
from ops.alerting import manager as alerts
from ops.contract import Finding, JobResult
from ops.core.clock import utc_now

WORDS = ("the probe saw a slow answer from the primary region while the queue kept growing and nobody "
         "had looked at it since the morning shift began")


def test_alerts_is_short_and_cut_between_words(state):  # noqa: F811
    now = utc_now()
    findings = [Finding(rule=f"reconcile_check_x{i:02d}", severity="warning",
                        summary=f"reconciliation check_x{i:02d}: {i} rows - {WORDS}",
                        labels={"check": f"check_x{i:02d}"})
                for i in range(24)]
    alerts.record_result(state.engine, "reconcile", JobResult(findings=findings), now, state.settings())
    with state.engine.connect() as conn:
        text = bot.alerts_text(conn, state.settings(), now)
    lines = parse_html(text).splitlines()
    assert lines[0] == "Alerts: 24 open (24 warning)"
    shown = [ln for ln in lines if ln.startswith("🟠 ")]
    assert len(shown) == 10
    assert "… and 14 more (opsbench alerts)" in lines
    assert len(text) < 1500, len(text)
    for ln in shown:
        key = ln.split()[1]
        assert key.startswith("reconcile_check_x") and "{check=check_x" in key          # the whole key: /ack takes it as shown
        said = ln.split(": ", 1)[1]
        assert "reconciliation check_x" not in said                  # the key's words once
        assert said.endswith("…") and len(said) <= 70
        n = int(said.split()[0])
        assert (f"{n} rows - {WORDS}").startswith(said[:-1])
        rest = f"{n} rows - {WORDS}"[len(said) - 1:]
        assert rest.startswith(" "), (said, rest[:10])               # cut between words

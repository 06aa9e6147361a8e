"""One state store, one count: every surface that says how many alerts are open says the same thing.

The expected words are written out by hand from the findings recorded below (two faults are
critical - the negative balance is seen by the live probe *and* by reconciliation, one fault -,
one warning, one info note), never taken from ops.alerting.tally.
"""

from __future__ import annotations

import html as htmllib
import json
import os
import re
import subprocess
import sys
from types import SimpleNamespace

from support.botapi import parse_html
from support.clock import clock_env

from ops.alerting.telegram import bot
from ops.alerting import manager as alerts
from ops.contract import Finding, JobResult
from ops.core.clock import utc_now
from ops.reports import figures, message, page

HEADLINE = "4 open (2 critical, 1 warning, 1 note)"
ECHO = "also seen by reconciliation"


def _record(state) -> None:
    now = utc_now()
    settings = state.settings()
    alerts.record_result(state.engine, "metric_probes", JobResult(findings=[
        Finding(rule="negative_balance", severity="critical", summary="1 user with a negative balance"),
        Finding(rule="stuck_jobs", severity="warning", summary="6 video jobs stuck"),
    ]), now, settings)
    alerts.record_result(state.engine, "http_probes", JobResult(findings=[
        Finding(rule="health_check_failing", severity="critical", summary="backend unhealthy",
                labels={"probe": "backend"}),
    ]), now, settings)
    alerts.record_result(state.engine, "reconcile", JobResult(findings=[
        Finding(rule="reconcile_negative_balances", severity="critical", summary="reconciliation negative rows",
                labels={"check": "negative_balances"}),
    ]), now, settings)
    alerts.record_result(state.engine, "reviews", JobResult(findings=[
        Finding(rule="admin_actions_review", severity="info", summary="1 admin action this week"),
    ]), now, settings)
    assert len(alerts.firing(state.engine)) == 5   # five rows, four things open


def _cli(state, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBENCH_", "TELEGRAM_", "DATABASE_URL"))}
    env.update(DATABASE_URL=state.url, OPSBENCH_STATE_URL=state.url, OPSBENCH_HOME=str(state.home), **clock_env())
    return subprocess.run([sys.executable, "-m", "ops", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_every_surface_gives_the_same_count(state):
    _record(state)
    now = utc_now()

    status = _cli(state, "status")
    assert f"alerts: {HEADLINE}" in status.stdout, status.stdout + status.stderr
    assert ECHO in status.stdout
    status_json = json.loads(_cli(state, "status", "-f", "json").stdout)
    assert (status_json["alerts"]["open"], status_json["alerts"]["critical"], status_json["alerts"]["warning"],
            status_json["alerts"]["notes"]) == (4, 2, 1, 1)
    assert "2 critical alerts open" in status_json["problems"]

    listing = _cli(state, "alerts")
    assert f"Alerts: {HEADLINE}" in listing.stdout, listing.stdout + listing.stderr
    # the echo on its own row, said in words and pointing at its root
    assert re.search(r"reconcile_negative_balances\{check=negative_balances\}\s+" + ECHO
                     + r": the same fault as negative_balance", listing.stdout), listing.stdout
    assert json.loads(_cli(state, "alerts", "-f", "json").stdout)["count"]["headline"] == HEADLINE

    with state.engine.connect() as conn:
        tg_status = parse_html(bot.status_text(conn, state.settings(), now))
        tg_alerts = parse_html(bot.alerts_text(conn, state.settings(), now))
    assert f"Alerts: {HEADLINE}" in tg_status and ECHO in tg_status
    assert f"Alerts: {HEADLINE}" in tg_alerts

    # the digest and the HTML report read the alerts the way the report job does
    lines, *_ = figures._state_sections(state.engine, now)
    rep = SimpleNamespace(alerts=lines, generated_at=now)
    digest = parse_html("\n".join(message.alert_lines(rep)))
    assert f"Alerts: {HEADLINE}" in digest
    assert f"negative_balance 1 user with a negative balance ({ECHO})" in digest
    assert "reconciliation negative rows" not in digest          # the echo is said in words, once
    html = htmllib.unescape(re.sub(r"<[^>]+>", " ", page.alerts_section(lines)))
    html = re.sub(r"\s+", " ", html)
    assert f"Alerts: {HEADLINE}" in html and ECHO in html and "admin_actions_review" in html

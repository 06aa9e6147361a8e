"""`opsbench alerts | silence | unsilence | telegram test` as a user runs them (subprocess)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys

import pytest
from support.clock import clock_env
from support.botapi import TOKEN

from ops.alerting import manager as alerts
from ops.contract import Finding, JobResult
from ops.core.clock import utc_now


def run(state, *args, api=None, chat="-100500", token=TOKEN, **env):
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBENCH_", "TELEGRAM_", "DATABASE_URL"))}
    full.update(DATABASE_URL=state.url, OPSBENCH_STATE_URL=state.url, OPSBENCH_HOME=str(state.home), **clock_env())
    if api is not None:
        full.update(TELEGRAM_BOT_TOKEN=token, TELEGRAM_CHAT_ID=chat, TELEGRAM_API_BASE=api.url)
    full.update(env)
    return subprocess.run([sys.executable, "-m", "ops", *args], env=full, capture_output=True, text=True,
                          timeout=120)


def one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("opsbench: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def test_silence_alerts_unsilence(state):
    now = utc_now()
    settings = state.settings()
    result = JobResult(findings=[
        Finding(rule="credit_drift", severity="critical", summary="7 users drift", command="opsbench run reconcile"),
        Finding(rule="error_rate", severity="warning", summary="error rate 6 %"),
    ])
    alerts.record_result(state.engine, "reconcile", result, now, settings)

    p = run(state, "silence", "credit_*", "--for", "2h", "--reason", "ledger migration")
    assert p.returncode == 0, p.stderr
    sid = int(re.search(r"silence #(\d+)", p.stdout).group(1))
    (active,) = alerts.active_silences(state.engine, utc_now())
    assert active.id == sid and active.pattern == "credit_*" and active.reason == "ledger migration"
    assert dt.timedelta(minutes=119) < active.ends_at - active.starts_at <= dt.timedelta(hours=2)

    p = run(state, "alerts")
    assert p.returncode == 1, p.stderr  # a critical alert is firing: a script sees it in the exit code
    assert "Alerts: 2 open (1 critical, 1 warning)" in p.stdout
    assert re.search(r"critical +credit_drift", p.stdout) and "reproduce: opsbench run reconcile" in p.stdout
    assert re.search(rf"#{sid} +credit_\*", p.stdout) and "ledger migration" in p.stdout
    assert "Outbox: 1 pending" in p.stdout
    assert "firing" in p.stdout.split("Recent")[1]

    p = run(state, "alerts", "--format", "json")
    assert p.returncode == 1, p.stderr
    data = json.loads(p.stdout)
    assert {(a["key"], a["severity"]) for a in data["firing"]} == {("credit_drift", "critical"),
                                                                  ("error_rate", "warning")}
    assert [s["id"] for s in data["silences"]] == [sid] and data["outbox_depth"] == 1
    assert data["problems"] == ["1 critical alert open"]

    p = run(state, "unsilence", str(sid))
    assert p.returncode == 0 and f"silence #{sid} ended" in p.stdout
    assert alerts.active_silences(state.engine, utc_now()) == []
    one_line_error(run(state, "unsilence", str(sid)), f"no active silence #{sid}")


@pytest.mark.parametrize("args, needle", [
    (["silence", "x*", "--for", "banana", "--reason", "r"], "--for: expected a duration"),
    (["silence", "x*", "--for", "0m", "--reason", "r"], "longer than zero"),
    (["silence", "x*", "--for", "2h"], "--reason"),
    (["silence", " ", "--reason", "r"], "PATTERN"),
    (["unsilence", "abc"], "abc"),
])
def test_bad_input_is_one_line(state, args, needle):
    one_line_error(run(state, *args), needle)


def test_telegram_test_sends_edits_and_registers_commands(state, api):
    p = run(state, "telegram", "test", api=api, chat="-100500", TELEGRAM_THREAD_ID="9")
    assert p.returncode == 0, p.stderr
    assert [r.method for r in api.control] == ["getMe", "getMyCommands", "setMyCommands"]
    assert [r.method for r in api.requests] == ["sendMessage", "editMessageText"]
    msg, edit = api.requests
    assert msg.params["chat_id"] == "-100500" and msg.params["message_thread_id"] == 9
    assert "opsbench test message" in msg.params["text"]
    (kept,) = api.messages.values()
    assert kept.edits == 1 and "can update its alert messages in place" in kept.text
    assert [c["command"] for c in api.commands] == ["status", "alerts", "silence", "unsilence", "maintenance", "ack", "digest",
                                                   "help"]
    assert "@opsbench_test_bot" in p.stdout and "chat -100500 topic 9" in p.stdout
    assert "registered the bot's commands (8)" in p.stdout and "admins: none" in p.stdout
    secret = TOKEN.split(":", 1)[1]
    assert secret not in p.stdout + p.stderr
    # a second run finds the commands in place and does not register them again
    p = run(state, "telegram", "test", api=api, chat="-100500", TELEGRAM_ADMIN_IDS="42,7")
    assert p.returncode == 0, p.stderr
    assert [r.method for r in api.control].count("setMyCommands") == 1
    assert "commands registered (8)" in p.stdout and "admins (TELEGRAM_ADMIN_IDS): 7, 42" in p.stdout


def test_telegram_test_without_token(state):
    one_line_error(run(state, "telegram", "test"), "TELEGRAM_BOT_TOKEN")


@pytest.mark.parametrize("setup, needle", [
    (lambda api: api.blocked.add("-100500"), "bot was blocked"),
    (lambda api: api.unknown.add("-100500"), "chat not found"),
])
def test_telegram_test_failure_is_one_redacted_line(state, api, setup, needle):
    setup(api)
    line = one_line_error(run(state, "telegram", "test", api=api), needle)
    assert TOKEN.split(":", 1)[1] not in line


def test_telegram_test_wrong_token(state, api):
    line = one_line_error(run(state, "telegram", "test", api=api, token="111111:" + "Z" * 35), "401")
    assert "Z" * 35 not in line


def test_telegram_drain_without_token_prints(state):
    settings = state.settings()
    alerts.record_result(state.engine, "probe", JobResult(findings=[
        Finding(rule="health_failing", severity="critical", summary="health <check> & db failing")]),
        utc_now(), settings)
    p = run(state, "telegram", "drain")
    assert p.returncode == 0, p.stderr
    assert "FIRING · critical · health_failing" in p.stdout
    assert "health <check> & db failing" in p.stdout
    assert "delivered 1, 0 pending" in p.stdout


def test_telegram_setup_prints_chats_threads_and_user_ids_without_consuming_updates(state, api):
    p = run(state, "telegram", "setup", api=api)
    assert p.returncode == 0, p.stderr
    assert "no messages yet: write something to @opsbench_test_bot" in p.stdout
    api.say("hello bot", chat_id="-100777", user_id=4242, username="ayla", thread_id=12)
    api.say("/status", chat_id="-100777", user_id=99, username="deniz")
    p = run(state, "telegram", "setup", api=api)
    assert p.returncode == 0, p.stderr
    assert "TELEGRAM_CHAT_ID=-100777" in p.stdout and "TELEGRAM_THREAD_ID=12" in p.stdout
    assert "TELEGRAM_ADMIN_IDS=99,4242" in p.stdout and "@ayla (4242)" in p.stdout
    # read, not consumed: no offset was passed, so the daemon still gets both updates
    assert all(r.params.get("offset") is None for r in api.control if r.method == "getUpdates")
    assert len(api.updates) == 2
    assert TOKEN.split(":", 1)[1] not in p.stdout + p.stderr


def test_bad_admin_ids_name_the_variable(state, api):
    one_line_error(run(state, "telegram", "test", api=api, TELEGRAM_ADMIN_IDS="42,@ayla"), "TELEGRAM_ADMIN_IDS")

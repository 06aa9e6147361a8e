"""Two-way Telegram end to end: the daemon as a process, the test Bot API as Telegram.

An alert fires -> one message with buttons -> an admin presses Silence 1 h -> the silence exists and the
message says so -> a stranger presses Resolve and is refused -> a daemon SIGKILLed between receiving an
Ack and acting on it acts on it exactly once after a restart -> the check clears -> the original message
is edited to RESOLVED.
"""

from __future__ import annotations

import datetime as dt
import signal

import pytest
import sqlalchemy as sa
from support.botapi import TOKEN
from support.daemon_support import DaemonProcess, daemon_env, wait_until, write_jobs_file

from ops.alerting import manager as alerts
from ops.core.clock import utc_now

# the outcome depends on the date: CI replays this module at every clock fixture (support/clock.py)
pytestmark = pytest.mark.clock

CHAT = "-100600"
ADMIN, STRANGER = 42, 777


def _jobs(flag) -> str:
    # the digest's daily slot is 12 h from now (UTC), so it never comes during the test: only /digest runs it
    slot = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=12)
    return f"""
[jobs.drain_outbox]
callable = "jobs.builtin:drain_outbox"
interval = "1s"
[jobs.heartbeat]
callable = "jobs.builtin:heartbeat"
interval = "1m"
[jobs.flag]
callable = "support.daemon_jobs:flag_check"
interval = "1s"
[jobs.flag.args]
flag_file = "{flag}"
[jobs.daily_digest]
callable = "support.daemon_jobs:fake_digest"
cron = "{slot.minute} {slot.hour} * * *"
timezone = "UTC"
"""


def _buttons(api, mid):
    return [b["text"] for row in (api.messages[mid].reply_markup or {}).get("inline_keyboard", []) for b in row]


def test_alert_buttons_from_the_phone_with_a_daemon_killed_mid_update(state, api, tmp_path, pg_home):
    flag = tmp_path / "flag"
    flag.touch()
    env = daemon_env(state.url, pg_home, write_jobs_file(tmp_path / "jobs.toml", _jobs(flag)),
                     TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_ID=CHAT, TELEGRAM_API_BASE=api.url,
                     TELEGRAM_ADMIN_IDS=str(ADMIN), TELEGRAM_POLL_TIMEOUT="1")
    first = DaemonProcess(env, tmp_path, "first")
    second = None
    try:
        def incident():
            ids = [m for m, k in api.messages.items() if k.reply_markup and k.reply_to is None]
            return ids[0] if ids else None

        mid = wait_until(incident, 60, what="the FIRING message")
        assert "FIRING" in api.messages[mid].text and "flag_up" in api.messages[mid].text
        assert "🔕 1h" in _buttons(api, mid)
        wait_until(lambda: any(c["command"] == "status" for c in api.commands), 30, what="setMyCommands")

        # an admin silences it for an hour from the phone
        api.press(mid, "🔕 1h", user_id=ADMIN, username="ayla")
        wait_until(lambda: api.answers, 30, what="the answer to the Silence press")
        assert "Silenced until" in api.answers[0]["text"]
        wait_until(lambda: "🔕 Silenced until" in api.messages[mid].text, 30, what="the edit showing the silence")
        (silence,) = alerts.active_silences(state.engine, _now(state))
        assert silence.pattern == "flag_up" and silence.created_by == "@ayla"

        # a stranger presses Resolve: refused, nothing changes
        api.press(mid, "✅ Resolve", user_id=STRANGER, username="mallory")
        wait_until(lambda: len(api.answers) >= 2, 30, what="the refusal")
        assert "only the admins" in api.answers[1]["text"]
        assert [r.key for r in alerts.firing(state.engine)] == ["flag_up"]

        # an Ack reaches the daemon, which is killed before it can act (the offset row is held by the test)
        with state.engine.connect() as blocker:
            tx = blocker.begin()
            blocker.execute(sa.text("SELECT * FROM opsbench.telegram_updates FOR UPDATE"))
            ack = api.press(mid, "👀 Ack", user_id=ADMIN, username="ayla")
            wait_until(lambda: ack in api.served, 30, what="getUpdates handing out the Ack")
            first.signal(signal.SIGKILL)
            first.wait(10)
            tx.rollback()
        assert _acked(state) is None and len(api.answers) == 2
        second = DaemonProcess(env, tmp_path, "second")
        wait_until(lambda: _acked(state), 60, what="the Ack acted on after the restart")
        wait_until(lambda: len(api.answers) >= 3, 30, what="the Ack's answer")
        assert "Acked by @ayla" in api.answers[2]["text"]
        wait_until(lambda: "Acked by @ayla" in api.messages[mid].text, 30, what="the edit showing the ack")
        with state.engine.connect() as c:
            acks = c.execute(sa.text("SELECT count(*) FROM opsbench.telegram_actions "
                                     "WHERE action = 'ack' AND outcome = 'done'")).scalar_one()
        assert acks == 1 and api.served.count(ack) >= 2   # delivered twice, acted on once

        # /digest from the phone runs the digest job now, and its message follows
        api.say("/digest", CHAT, user_id=ADMIN)
        wait_until(lambda: "📊 digest stand-in (daily_digest)" in api.texts(), 60, what="the digest after /digest")
        with state.engine.connect() as c:
            triggers = c.execute(sa.text("SELECT trigger FROM opsbench.job_runs WHERE job = 'daily_digest'")).scalars()
            assert list(triggers) == ["manual"]

        # the check clears: the original message is edited to RESOLVED (no reply: it was silenced)
        flag.unlink()
        wait_until(lambda: api.messages[mid].text.startswith("✅ RESOLVED"), 60, what="the RESOLVED edit")
        assert _buttons(api, mid) == ["🔎 Details"]
        incident_messages = [m for m, k in api.messages.items() if k.reply_to is None and "flag_up" in k.text]
        assert incident_messages == [mid]   # one message for the incident, however often it changed
        second.signal(signal.SIGTERM)
        assert second.wait(30) == 0
        assert TOKEN.split(":", 1)[1] not in first.output() + second.output()
    finally:
        first.kill()
        if second is not None:
            second.kill()


def _now(state):
    """The daemon's now: the suite's clock, which its subprocess shares (support.clock)."""
    return utc_now()


def _acked(state):
    with state.engine.connect() as c:
        return c.execute(sa.text("SELECT acked_by FROM opsbench.incidents ORDER BY id LIMIT 1")).scalar()

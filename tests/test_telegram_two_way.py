"""Two-way Telegram against the test Bot API: one message per incident, edited in place; buttons and
commands acted on once, by admins only, with an audit; answers not stuck behind a throttled chat."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa
from support.botapi import TOKEN

from ops.alerting import channels, outbox
from ops.alerting import manager as alerts
from ops.alerting.telegram import channel as telegram_channel
from ops.alerting.manager import RuleConfig
from ops.contract import Finding, JobResult
from ops.daemon.telegram_poller import TelegramPoller, process

CHAT = "-100500"
ADMIN, STRANGER = 42, 777
RULES = {"error_rate": RuleConfig(fire_after=1, resolve_after=1, repeat_every=dt.timedelta(hours=4))}


class Setup:
    def __init__(self, state, api, clock, **env):
        self.state, self.api, self.clock = state, api, clock
        env.setdefault("TELEGRAM_ADMIN_IDS", str(ADMIN))
        self.settings = state.telegram_settings(api, CHAT, TELEGRAM_POLL_TIMEOUT="0", **env)
        self.channel = channels.from_settings(self.settings, state.engine, clock=clock.monotonic, sleep=clock.sleep)
        self.jobs: list[str] = []   # jobs a command asked the daemon to run

    def drain(self):
        return outbox.drain(self.settings, self.state.engine, self.channel, clock=self.clock.now,
                            sleep=self.clock.sleep)

    def evaluate(self, bad: bool, *, key_labels=None):
        findings = [Finding(rule="error_rate", severity="warning", summary="error rate 7.5 % over 1 h",
                            labels=key_labels or {}, evidence=[{"provider": "kling", "failed": 9, "jobs": 120}],
                            evidence_count=1, command="opsbench query errors.daily")] if bad else []
        out = alerts.record_result(self.state.engine, "probe", JobResult(findings=findings, rules={"error_rate"}),
                                   self.clock.now(), self.settings, RULES)
        self.drain()
        return out

    def poll(self):
        """The daemon's poller, one round (getUpdates with timeout 0), acting on what arrived."""
        poller = TelegramPoller(self.settings, self.state.engine, leading=lambda: True, run_job=self.jobs.append,
                                clock=self.clock.now)
        poller._client = telegram_channel.telegram_client(self.settings, self.state.engine, clock=self.clock.monotonic,
                                                  sleep=self.clock.sleep)
        acted = poller.poll_once()
        self.drain()
        return acted

    def incident_message(self):
        (mid,) = [m for m, k in self.api.messages.items() if k.reply_markup and k.reply_to is None] or [None]
        return mid

    def actions(self):
        with self.state.engine.connect() as c:
            return [tuple(r) for r in c.execute(sa.text(
                "SELECT action, outcome, user_id FROM opsbench.telegram_actions ORDER BY id"))]


@pytest.fixture
def tg(state, api, clock):
    return Setup(state, api, clock)


def buttons(api, mid):
    return [b["text"] for row in api.messages[mid].reply_markup["inline_keyboard"] for b in row]


def test_one_message_per_incident_edited_in_place_when_it_resolves(tg):
    api = tg.api
    tg.evaluate(bad=True)
    mid = tg.incident_message()
    assert mid is not None and "FIRING" in api.messages[mid].text
    assert buttons(api, mid) == ["👀 Ack", "🔎 Details", "🔕 1h", "🔕 4h", "🔕 until 09:00", "✅ Resolve"]
    for row in api.messages[mid].reply_markup["inline_keyboard"]:
        assert all(len(b["callback_data"].encode()) <= 64 for b in row)
    # a repeat while it keeps firing: a short reply to the original, not a copy of it
    tg.clock.advance(4 * 3600)
    tg.evaluate(bad=True)
    (repeat,) = api.replies_to(mid)
    assert "STILL FIRING" in repeat and "Firing for 4h" in repeat and "kling" not in repeat
    # resolved: the original now says so at the top, keeps only Details, and a reply makes the phone notice
    tg.clock.advance(600)
    tg.evaluate(bad=False)
    kept = api.messages[mid]
    assert kept.edits == 1 and kept.text.startswith("✅ RESOLVED after 4h 10m")
    assert "error rate 7.5 %" in kept.text   # the original text stays under the status line
    assert buttons(api, mid) == ["🔎 Details"]
    assert len(api.replies_to(mid)) == 2 and "Resolved after 4h 10m" in api.replies_to(mid)[1]
    # nothing else was sent as a new message
    assert [k.reply_to for k in api.messages.values()].count(None) == 1


def test_an_edit_of_a_deleted_message_becomes_a_new_message_and_unmodified_is_fine(tg):
    api = tg.api
    tg.evaluate(bad=True)
    mid = tg.incident_message()
    api.delete(mid)
    tg.clock.advance(300)
    tg.evaluate(bad=False)
    assert outbox.depth(tg.state.engine) == 0
    (new_mid,) = [m for m, k in api.messages.items() if k.reply_to is None]
    assert new_mid != mid and api.messages[new_mid].text.startswith("✅ RESOLVED")
    with tg.state.engine.connect() as c:
        stored = c.execute(sa.text("SELECT message_id FROM opsbench.incidents")).scalar_one()
        failed = c.execute(sa.text("SELECT count(*) FROM opsbench.outbox WHERE status = 'failed'")).scalar_one()
    assert stored == new_mid and failed == 0   # later edits go to the new message
    # the same edit again: Telegram says "message is not modified", which is delivered, not failed
    with tg.state.engine.begin() as conn:
        (iid,) = conn.execute(sa.text("SELECT id FROM opsbench.incidents")).scalars()
        alerts.refresh_incidents(conn, [iid], tg.settings, tg.clock.now())
    assert tg.drain() == 1
    assert any(r.answered == 400 and r.method == "editMessageText" for r in api.requests)
    assert outbox.delivery_problems(tg.state.engine).failed == 0


def test_admin_silences_from_the_button_repeats_stop_and_the_message_says_so(tg):
    api = tg.api
    tg.evaluate(bad=True)
    mid = tg.incident_message()
    update = api.press(mid, "🔕 1h", user_id=ADMIN, username="ayla")
    assert tg.poll() == 1
    (answer,) = api.answers
    assert answer["callback_query_id"] and "Silenced until" in answer["text"]
    (silence,) = alerts.active_silences(tg.state.engine, tg.clock.now())
    assert silence.pattern == "error_rate" and silence.created_by == "@ayla"
    assert silence.ends_at == tg.clock.now() + dt.timedelta(hours=1)
    assert "🔕 Silenced until" in api.messages[mid].text and "by @ayla" in api.messages[mid].text
    # the same update delivered again (a restart before Telegram saw the new offset): acted on once
    (again,) = [u for u in api.updates if u["update_id"] == update]   # not confirmed to Telegram yet
    assert process(tg.state.engine, again, tg.settings, tg.clock.now()) is None
    assert len(alerts.active_silences(tg.state.engine, tg.clock.now())) == 1
    # pressing the same button again: says who did it, does not add a second silence
    api.press(mid, "🔕 1h", user_id=ADMIN)
    tg.poll()
    assert "Already done by @ayla" in api.answers[-1]["text"]
    assert len(alerts.active_silences(tg.state.engine, tg.clock.now())) == 1
    assert ("s1h", "done", ADMIN) in tg.actions() and ("s1h", "stale", ADMIN) in tg.actions()


def test_ack_stops_repeats_and_shows_who(tg):
    api = tg.api
    tg.evaluate(bad=True)
    mid = tg.incident_message()
    api.press(mid, "👀 Ack", user_id=ADMIN, username="ayla")
    tg.poll()
    assert "Acked by @ayla" in api.messages[mid].text and "👀 Ack" not in buttons(api, mid)
    tg.clock.advance(8 * 3600)
    tg.evaluate(bad=True)
    assert api.replies_to(mid) == []   # no "still firing" for an acked alert
    (row,) = alerts.firing(tg.state.engine)
    assert row.acked_by == "@ayla"


def test_a_non_admin_is_refused_politely_and_audited(tg):
    api = tg.api
    tg.evaluate(bad=True)
    mid = tg.incident_message()
    api.press(mid, "✅ Resolve", user_id=STRANGER, username="mallory")
    tg.poll()
    assert "only the admins in TELEGRAM_ADMIN_IDS" in api.answers[-1]["text"]
    assert "777" in api.answers[-1]["text"]
    assert len(alerts.firing(tg.state.engine)) == 1
    assert ("resolve", "refused", STRANGER) in tg.actions()
    # reading is open: Details replies with the evidence and the reproduce command
    api.press(mid, "🔎 Details", user_id=STRANGER)
    tg.poll()
    details = [t for t in api.replies_to(mid) if "Evidence" in t]
    assert details and "provider=kling" in details[0] and "opsbench query errors.daily" in details[0]


def test_a_button_on_an_alert_that_changed_says_so_and_forged_data_finds_nothing(tg):
    api = tg.api
    tg.evaluate(bad=True)
    mid = tg.incident_message()
    tg.clock.advance(300)
    tg.evaluate(bad=False)           # resolved meanwhile
    tg.clock.advance(300)
    tg.evaluate(bad=True)            # and fired again: a new incident, a new message
    api.press(mid, "🔎 Details", user_id=ADMIN)  # the old message keeps Details only
    api.press(mid, "x", user_id=ADMIN, data=_token_of(tg, mid, "resolve"))
    tg.poll()
    assert "Changed meanwhile" in api.answers[-1]["text"]
    assert len(alerts.firing(tg.state.engine)) == 1   # the new episode was not touched
    api.press(mid, "x", user_id=ADMIN, data="forged-token-1234")
    tg.poll()
    assert "not one of mine" in api.answers[-1]["text"]
    # a real token pasted under another message acts on nothing
    new_mid = max(m for m, k in api.messages.items() if k.reply_markup and k.reply_to is None)
    api.press(new_mid, "x", user_id=ADMIN, data=_token_of(tg, mid, "ack"))
    tg.poll()
    assert "belongs to another message" in api.answers[-1]["text"]
    assert alerts.firing(tg.state.engine)[0].acked_by is None
    assert [o for _, o, _ in tg.actions()] == ["done", "stale", "unknown", "refused"]


def _token_of(tg, mid, action):
    with tg.state.engine.connect() as c:
        return c.execute(sa.text(
            "SELECT b.token FROM opsbench.telegram_buttons b JOIN opsbench.incidents i ON i.id = b.incident_id "
            "WHERE i.message_id = :m AND b.action = :a"), {"m": mid, "a": action}).scalar_one()


def test_commands(tg):
    api = tg.api
    tg.evaluate(bad=True, key_labels={"provider": "kling"})
    api.say("/status@opsbench_test_bot", CHAT, user_id=STRANGER)
    api.say("/alerts", CHAT, user_id=STRANGER)
    api.say("/silence 'error_rate{*}' 2h deploy in progress", CHAT, user_id=STRANGER)
    api.say("/silence 'error_rate{*}' 2h deploy in progress", CHAT, user_id=ADMIN)
    api.say("/silence x forever", CHAT, user_id=ADMIN)
    api.say("/ack error_rate{provider=kling}", CHAT, user_id=ADMIN)
    api.say("/frobnicate", CHAT, user_id=ADMIN)
    api.say("/status", "-100999", user_id=ADMIN)             # another chat: ignored
    api.say("/help", CHAT)
    api.say("/digest", CHAT, user_id=ADMIN)
    assert tg.poll() == 10
    replies = {k.reply_to: k.text for k in api.messages.values() if k.reply_to is not None}
    texts = list(replies.values())
    assert any(t.startswith("🟠 Alerts: 1 open (1 warning)") and "error_rate{provider=kling}" in t for t in texts), texts
    assert any(t.startswith("Alerts: 1 open (1 warning)") and "Silences (0)" in t for t in texts)
    assert any("only the admins" in t for t in texts)
    (silence,) = alerts.active_silences(tg.state.engine, tg.clock.now())
    assert silence.pattern == "error_rate{*}" and silence.reason == "deploy in progress"
    assert any(f"Silence #{silence.id}" in t for t in texts)
    assert any(t.startswith("DURATION: expected a duration") for t in texts)
    assert alerts.firing(tg.state.engine)[0].acked_by == "@founder"
    assert any("I don't know /frobnicate" in t for t in texts)
    assert any("/silence PATTERN DURATION" in t for t in texts)
    assert tg.jobs == ["daily_digest"]
    api.say(f"/unsilence {silence.id}", CHAT, user_id=ADMIN)
    tg.poll()
    assert alerts.active_silences(tg.state.engine, tg.clock.now()) == []
    outcomes = [(a, o) for a, o, _ in tg.actions()]
    assert ("/status", "ignored") in outcomes and ("/silence", "refused") in outcomes
    assert ("/unsilence", "done") in outcomes and ("/digest", "done") in outcomes
    assert TOKEN.split(":", 1)[1] not in json.dumps([r.params for r in api.requests])


def test_a_press_is_answered_while_the_chat_is_throttled(tg):
    api = tg.api
    tg.evaluate(bad=True)
    mid = tg.incident_message()
    with tg.state.engine.begin() as conn:
        outbox.enqueue(conn, "a report", now=tg.clock.now(), source="test")
    api.fail("429", retry_after=600)   # longer than the client waits inside one send
    tg.drain()
    assert outbox.depth(tg.state.engine) == 1     # the report waits out its retry_after
    api.press(mid, "🔎 Details", user_id=ADMIN)
    tg.poll()
    assert api.answers and api.answers[-1]["text"] == "Details below."
    assert outbox.depth(tg.state.engine) == 2     # the report and the Details reply still wait, in order
    tg.clock.advance(601)
    tg.drain()
    assert outbox.depth(tg.state.engine) == 0
    assert api.texts()[-2:] == ["a report", api.texts()[-1]] and "Evidence" in api.texts()[-1]


def test_updates_from_another_topic_are_not_acted_on(state, api, clock):
    tg = Setup(state, api, clock, TELEGRAM_THREAD_ID="5")
    api.say("/status", CHAT, user_id=ADMIN, thread_id=6)
    api.say("/status", CHAT, user_id=ADMIN, thread_id=5)
    tg.poll()
    assert [(a, o) for a, o, _ in tg.actions()] == [("/status", "ignored"), ("/status", "done")]
    assert len([k for k in api.messages.values() if k.reply_to is not None]) == 1


def test_an_admin_resolves_by_hand_and_the_message_says_who(tg):
    api = tg.api
    tg.evaluate(bad=True)
    mid = tg.incident_message()
    api.press(mid, "✅ Resolve", user_id=ADMIN, username="ayla")
    tg.poll()
    assert "Resolved" in api.answers[-1]["text"]
    assert alerts.firing(tg.state.engine) == []
    text = api.messages[mid].text
    assert text.startswith("✅ RESOLVED") and "✋ Resolved by @ayla" in text
    assert buttons(api, mid) == ["🔎 Details"]
    kinds = [e.kind for e in alerts.recent(tg.state.engine)]
    assert "closed" in kinds
    # the check still finds it: a new episode, a new message (the hand resolve did not hide it)
    tg.clock.advance(300)
    tg.evaluate(bad=True)
    assert len([k for k in api.messages.values() if k.reply_markup and k.reply_to is None]) == 2


def test_opsbench_alerts_shows_who_did_what_from_telegram(tg, monkeypatch, capsys):
    from ops.cli import main
    from ops.core.settings import reset_settings_cache

    api = tg.api
    tg.evaluate(bad=True)
    mid = tg.incident_message()
    api.press(mid, "👀 Ack", user_id=ADMIN, username="ayla")
    api.press(mid, "✅ Resolve", user_id=STRANGER, username="mallory")
    tg.poll()
    for k, v in {"DATABASE_URL": tg.state.url, "OPSBENCH_STATE_URL": tg.state.url,
                 "OPSBENCH_HOME": str(tg.state.home)}.items():
        monkeypatch.setenv(k, v)
    reset_settings_cache()
    capsys.readouterr()
    main(["alerts"])
    out = capsys.readouterr().out
    assert "[acked by @ayla" in out
    section = out[out.index("From Telegram (2):"):]
    assert "refused  resolve incident" in section and f"@mallory ({STRANGER})" in section
    assert "done     ack incident" in section and f"@ayla ({ADMIN})" in section and f"message {mid}" in section
    main(["alerts", "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert [(a["action"], a["outcome"], a["user_id"]) for a in data["telegram_actions"]] == \
        [("resolve", "refused", STRANGER), ("ack", "done", ADMIN)]
    assert data["firing"][0]["acked_by"] == "@ayla"


def test_many_alerts_firing_together_are_all_shown_in_as_few_messages_as_fit(tg):
    from support.botapi import utf16_len

    rows = [{"user_id": f"user-{i:03d}", "balance": -i, "note": "x" * 200} for i in range(5)]
    findings = [Finding(rule=f"check_{i:02d}", severity="critical" if i % 3 == 0 else "warning",
                        summary=f"check {i:02d} finds rows", evidence=rows, evidence_count=40,
                        command=f"opsbench checks run check_{i:02d}") for i in range(30)]
    alerts.record_result(tg.state.engine, "reconcile", JobResult(findings=findings), tg.clock.now(), tg.settings)
    tg.drain()
    sent = [k for k in tg.api.messages.values() if k.reply_to is None]
    assert 2 <= len(sent) < 30                    # grouped, but split where one message would not hold them
    assert all(utf16_len(k.text) <= 4096 and k.reply_markup for k in sent)
    shown = "\n".join(k.text for k in sent)
    assert all(f"check_{i:02d}" in shown for i in range(30)) and "cut to fit" not in shown
    assert sent[0].text.startswith("🔴") and "· critical ·" in sent[0].text   # the most severe come first


def test_maintenance_from_telegram_holds_warnings_and_status_says_so(tg):
    from ops.alerting import maintenance_store

    api = tg.api
    api.say("/maintenance 30m deploy", CHAT, user_id=STRANGER)           # a change: admins only
    api.say("/maintenance soon deploy", CHAT, user_id=ADMIN)
    api.say("/maintenance 30m deploy v2", CHAT, user_id=ADMIN)
    assert tg.poll() == 3
    texts = [k.text for k in api.messages.values() if k.reply_to is not None]
    assert any("only the admins" in t for t in texts)
    assert any(t.startswith("WHEN: ") and "30m" in t for t in texts), texts
    (window,) = maintenance_store.active(tg.state.engine)
    assert window.reason == "deploy v2" and window.created_by == "@founder" and window.patterns == ()
    assert any(t.startswith(f"🛠 Maintenance #{window.id}") for t in texts)
    # a warning inside the window is held: no incident message
    before = len(api.messages)
    (t,) = tg.evaluate(bad=True)
    assert t.held == "silenced" and t.notified is None and len(api.messages) == before
    api.say("/status", CHAT, user_id=STRANGER)
    tg.poll()
    status = [k.text for k in api.messages.values() if k.reply_to is not None][-1]
    assert f"In maintenance: #{window.id} deploy v2 until" in status

"""The durable outbox: in order, never twice, nothing lost through outages, refusals and kills."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.clock import clock_env
from support.botapi import TOKEN

from ops.alerting import channels, outbox
from ops.alerting import manager as alerts
from ops.alerting.telegram import channel as telegram_channel
from ops.contract import Finding, JobResult
from ops.core.clock import utc_now

REPO = Path(__file__).resolve().parents[1]


def telegram(state, api, clock, chat="-100500"):
    settings = state.telegram_settings(api, chat)
    return settings, channels.from_settings(settings, state.engine, clock=clock.monotonic, sleep=clock.sleep)


def enqueue_texts(engine, texts, now):
    with engine.begin() as conn:
        for t in texts:
            outbox.enqueue(conn, t, now=now, source="test")


def statuses(engine):
    return [(r.id, r.status) for r in reversed(outbox.recent(engine, 1000))]


def test_drains_in_order_and_never_twice(state, api, clock):
    settings, channel = telegram(state, api, clock)
    enqueue_texts(state.engine, [f"message {i}" for i in range(5)], clock.now())
    assert outbox.depth(state.engine) == 5
    assert outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep) == 5
    assert api.texts() == [f"message {i}" for i in range(5)]
    assert outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep) == 0
    assert len(api.requests) == 5
    assert outbox.depth(state.engine) == 0
    assert {s for _, s in statuses(state.engine)} == {"sent"}


def test_max_messages(state, api, clock):
    settings, channel = telegram(state, api, clock)
    enqueue_texts(state.engine, ["a", "b", "c"], clock.now())
    assert outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep, max_messages=2) == 2
    assert outbox.depth(state.engine) == 1
    assert api.texts() == ["a", "b"]


def test_long_text_becomes_several_rows(state, api, clock):
    settings, channel = telegram(state, api, clock)
    text = "\n".join(f"<b>line {i}</b> " + "x" * 80 for i in range(200))
    with state.engine.begin() as conn:
        ids = outbox.enqueue(conn, text, now=clock.now())
    assert len(ids) > 1
    outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep)
    assert "\n".join(api.texts()) == text  # cut at line breaks; the break at each cut is dropped


def test_hundred_alerts_while_down_delivered_in_order_after(state, api, clock):
    settings, channel = telegram(state, api, clock)
    api.down()
    start = clock.now()
    for i in range(100):
        finding = Finding(rule=f"rule_{i:03d}", severity="warning", summary=f"problem number {i}")
        alerts.record_result(state.engine, "probe", JobResult(findings=[finding]), clock.now(), settings)
        clock.advance(1)
    assert outbox.depth(state.engine) == 100
    # the sender keeps trying while Telegram is unreachable; nothing is dropped
    for _ in range(5):
        assert outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep) == 0
        clock.advance(600)
    assert outbox.depth(state.engine) == 100
    api.up()
    clock.advance(2 * 3600)
    held_for = clock.now() - start
    assert outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep) == 100
    texts = api.texts()
    assert len(texts) == 100
    for i, text in enumerate(texts):
        assert f"rule_{i:03d}" in text and f"problem number {i}" in text
    hours, minutes = divmod(int(held_for.total_seconds()) // 60, 60)
    assert texts[0].startswith(f"⏳ <b>Delayed delivery</b>: 100 messages were held for {hours}h {minutes}m")
    assert not any("Delayed delivery" in t for t in texts[1:])
    assert outbox.depth(state.engine) == 0


def test_deferred_message_blocks_later_ones(state, api, clock):
    settings, channel = telegram(state, api, clock)
    enqueue_texts(state.engine, ["first", "second"], clock.now())
    api.fail("500", times=10)
    assert outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep) == 0
    head = outbox.recent(state.engine)[-1]
    assert head.body == "first" and head.attempts == 1 and head.next_attempt_at > clock.now()
    assert "500" in head.last_error
    api.plan.clear()
    # not yet due: nothing is sent, "second" does not overtake "first"
    assert outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep) == 0
    clock.advance(120)  # the first retry step is 30 s +-20 %
    assert outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep) == 2
    assert api.texts() == ["first", "second"]


def test_rate_limit_beyond_patience_uses_retry_after(state, api, clock):
    settings, channel = telegram(state, api, clock)
    enqueue_texts(state.engine, ["x"], clock.now())
    api.fail("429", retry_after=900)
    assert outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep) == 0
    head = outbox.recent(state.engine)[0]
    assert head.next_attempt_at - clock.now() >= dt.timedelta(seconds=900)


def test_refusing_chat_reported_once_and_messages_kept(state, api, clock, caplog):
    settings, channel = telegram(state, api, clock, chat="-100666")
    api.blocked.add("-100666")
    enqueue_texts(state.engine, ["one", "two"], clock.now())
    with caplog.at_level(logging.ERROR, logger="opsbench.outbox"):
        assert outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep) == 0
        assert len(api.requests) == 1  # not retried
        clock.advance(120)
        assert outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep) == 0
        assert len(api.requests) == 1  # still waiting, no new request
        for probe in range(2, 14):  # an hour of probes, one request every 5 minutes
            clock.advance(300)
            assert outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep) == 0
            assert len(api.requests) == probe
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "blocked" in errors[0].getMessage()
    assert outbox.depth(state.engine) == 2
    api.blocked.clear()  # the founder unblocks the bot: delivery resumes at the next probe
    clock.advance(301)
    assert outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep) == 2
    first, second = api.texts()
    assert first.startswith("⏳ <b>Delayed delivery</b>: 2 messages were held for 1h 7m") and first.endswith("\n\none")
    assert second == "two"


def test_rejected_message_kept_as_failed_and_queue_moves_on(state, api, clock):
    settings, channel = telegram(state, api, clock)
    enqueue_texts(state.engine, ["rejected", "after"], clock.now())
    api.fail("400", description="Bad Request: message text is empty")  # a permanent 400
    assert outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep) == 1
    assert api.texts() == ["after"]
    assert [s for _, s in statuses(state.engine)] == ["failed", "sent"]


def test_migration_persisted_and_used_by_next_process(state, api, clock, caplog):
    api.migrations["-4001"] = -1004001
    settings, channel = telegram(state, api, clock, chat="-4001")
    enqueue_texts(state.engine, ["before"], clock.now())
    with caplog.at_level(logging.WARNING):
        outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep)
    assert any(r.levelno == logging.WARNING and "-1004001" in r.getMessage() for r in caplog.records)
    assert telegram_channel.current_chat_id(state.engine, "-4001") == "-1004001"
    # a new process (new channel) goes straight to the new chat
    _, fresh = telegram(state, api, clock, chat="-4001")
    enqueue_texts(state.engine, ["after"], clock.now())
    n = len(api.requests)
    outbox.drain(settings, state.engine, fresh, clock=clock.now, sleep=clock.sleep)
    assert [r.params["chat_id"] for r in api.requests[n:]] == ["-1004001"]
    assert api.texts() == ["before", "after"]


def test_photo_and_document_payloads(state, api, clock, tmp_path):
    settings, channel = telegram(state, api, clock)
    report = tmp_path / "weekly.html"
    report.write_bytes(b"<html>weekly</html>")
    with state.engine.begin() as conn:
        outbox.enqueue(conn, "<b>Revenue</b> chart", kind="photo", payload=b"\x89PNG\x00\x01binary", now=clock.now())
        outbox.enqueue(conn, "weekly report", kind="document", payload_path=str(report), filename="weekly.html",
                       now=clock.now())
    assert outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep) == 2
    photo, doc = api.delivered
    assert photo.files["photo"][1] == b"\x89PNG\x00\x01binary" and photo.params["caption"] == "<b>Revenue</b> chart"
    assert doc.files["document"] == ("weekly.html", b"<html>weekly</html>")


def test_silent_flag_reaches_telegram(state, api, clock):
    settings, channel = telegram(state, api, clock)
    with state.engine.begin() as conn:
        outbox.enqueue(conn, "shh", silent=True, now=clock.now())
        outbox.enqueue(conn, "loud", now=clock.now())
    outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep)
    assert api.delivered[0].params.get("disable_notification") is True
    assert "disable_notification" not in api.delivered[1].params


def test_console_channel_without_token(state, clock, capsys):
    settings = state.settings()
    enqueue_texts(state.engine, ["<b>Disk</b> &lt;95%&gt; &amp; rising"], clock.now())
    assert outbox.drain(settings, state.engine, clock=clock.now, sleep=clock.sleep) == 1
    out = capsys.readouterr().out
    assert "Disk <95%> & rising" in out
    assert outbox.recent(state.engine)[0].channel == "console"


def _env(state, api, chat):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPSBENCH_", "TELEGRAM_", "DATABASE_URL"))}
    env.update(DATABASE_URL=state.url, OPSBENCH_STATE_URL=state.url, OPSBENCH_HOME=str(state.home),
               TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_CHAT_ID=chat, TELEGRAM_API_BASE=api.url, **clock_env())
    return env


def test_drain_killed_mid_send_loses_nothing(state, api, clock, tmp_path):
    now = utc_now()
    texts = [f"kill test {i}" for i in range(6)]
    enqueue_texts(state.engine, texts, now)
    api.fail("ok", times=2)
    api.fail("hang")  # the third message never gets an answer
    proc = subprocess.Popen([sys.executable, "-m", "ops", "telegram", "drain"], cwd=tmp_path,
                            env=_env(state, api, "31337"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(api.requests) < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert len(api.requests) >= 3, proc.communicate(timeout=5)
        time.sleep(0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert api.texts() == texts[:2]
    api.release.set()
    # restart: the killed transaction rolled back, the in-flight message is still pending
    settings = state.telegram_settings(api, "31337")
    channel = channels.from_settings(settings, state.engine, clock=clock.monotonic, sleep=clock.sleep)
    deadline = time.monotonic() + 30
    sent = 0
    while outbox.depth(state.engine) and time.monotonic() < deadline:
        sent += outbox.drain(settings, state.engine, channel, sleep=clock.sleep)
        time.sleep(0.1)  # the server may take a moment to notice the killed client
    assert sent == 4
    assert api.texts() == texts  # all delivered, in order, none twice
    asked = [r.params.get("text") for r in api.requests if r.method == "sendMessage"]
    assert asked.count(texts[2]) == 2 and all(asked.count(t) == 1 for t in texts if t != texts[2])

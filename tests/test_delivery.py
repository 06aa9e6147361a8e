"""Delivery bounds and visibility: the drain keeps a time budget, refusals and
rejections reach Sentry once and show in `opsbench alerts` / `status`, the
backlog notice is said once, blank texts are never queued."""

from __future__ import annotations

import datetime as dt

import pytest
from support.botapi import TOKEN

from jobs import builtin
from ops.alerting import channels, outbox
from ops.cli import main
from ops.contract import JobContext
from ops.core import sentry as ops_sentry
from ops.core.settings import reset_settings_cache
from ops.daemon.jobspec import load_jobs

SECRET = TOKEN.split(":", 1)[1]


def telegram(state, api, clock, chat="4242", **env):
    settings = state.telegram_settings(api, chat, **env)
    return settings, channels.from_settings(settings, state.engine, clock=clock.monotonic, sleep=clock.sleep)


def enqueue_texts(engine, texts, now, **kw):
    with engine.begin() as conn:
        for t in texts:
            outbox.enqueue(conn, t, now=now, source="test", **kw)


def drain(settings, state, channel, clock, **kw):
    return outbox.drain(settings, state.engine, channel, clock=clock.now, sleep=clock.sleep, **kw)


# -- time budget -----------------------------------------------------------------------

@pytest.mark.parametrize("chat, per_run", [("4242", (60, 61)), ("-100500", (20, 21))])
def test_backlog_drained_within_budget_over_several_runs(state, api, clock, chat, per_run):
    """A private chat takes ~1 message a second, a group 20 a minute: a 60 s budget sends
    about 60 or 20 per run, never waits past it, and the next runs carry on in order."""
    settings, channel = telegram(state, api, clock, chat)
    texts = [f"backlog {i}" for i in range(130)]
    enqueue_texts(state.engine, texts, clock.now())
    clock.advance(3600)  # an hour-long outage: the backlog notice is due
    runs = []
    while outbox.depth(state.engine) and len(runs) < 20:
        started = clock.elapsed
        runs.append(drain(settings, state, channel, clock, budget_s=60))
        assert clock.elapsed - started <= 60  # no pacing wait crossed the budget
        clock.advance(30)  # the job's interval
    low, high = per_run
    assert all(low <= n <= high for n in runs[:-1]) and sum(runs) == 130
    delivered = api.texts()
    assert [t.rsplit("\n\n", 1)[-1] for t in delivered] == texts  # in order, none twice
    assert sum("Delayed delivery" in t for t in delivered) == 1  # said once, not once per run
    assert delivered[0].startswith("⏳ <b>Delayed delivery</b>: 130 messages were held for 1h")
    assert channel.client.deadline is None  # the cached channel is not left with this run's deadline


def test_long_retry_after_is_not_waited_past_the_budget(state, api, clock):
    settings, channel = telegram(state, api, clock)
    enqueue_texts(state.engine, ["first", "second"], clock.now())
    api.fail("429", retry_after=45)  # within the client's patience, but not within 30 s
    assert drain(settings, state, channel, clock, budget_s=30) == 0
    assert 45 not in clock.sleeps and clock.elapsed <= 30
    head = outbox.recent(state.engine)[-1]
    assert head.body == "first" and head.next_attempt_at - clock.now() >= dt.timedelta(seconds=45)
    clock.advance(46)
    assert drain(settings, state, channel, clock, budget_s=30) == 2
    assert api.texts() == ["first", "second"]


def test_budget_spent_before_a_send_leaves_the_row_untouched(state, api, clock):
    settings, channel = telegram(state, api, clock)
    enqueue_texts(state.engine, ["a", "b", "c"], clock.now())
    # 0.5 s: "a" goes at once, "b" would need a 1 s pacing wait -> postponed, not a failure
    assert drain(settings, state, channel, clock, budget_s=0.5) == 1
    b = outbox.recent(state.engine)[1]
    assert b.body == "b" and b.status == "pending" and b.attempts == 0 and b.last_error is None
    assert drain(settings, state, channel, clock) == 2
    assert api.texts() == ["a", "b", "c"]


def test_drain_job_passes_a_budget_well_under_its_timeout(state, monkeypatch):
    (spec,) = [s for s in load_jobs(state.settings()) if s.id == "drain_outbox"]
    assert spec.args["budget_s"] + 30 <= spec.timeout_s  # room for requests in flight
    seen = {}

    def fake_drain(settings, engine, **kw):
        seen.update(kw)
        return 3

    monkeypatch.setattr(outbox, "drain", fake_drain)
    ctx = JobContext(settings=state.settings(), job_id="drain_outbox", run_id="r1", args=dict(spec.args))
    result = builtin.drain_outbox(ctx)
    assert result.status == "ok" and result.metrics["sent"] == 3
    assert seen["budget_s"] == spec.args["budget_s"] and seen["clock"] is ctx.clock
    builtin.drain_outbox(JobContext(settings=state.settings(), job_id="drain_outbox", run_id="r2"))
    assert seen["budget_s"] == builtin.DRAIN_BUDGET_S
    for bad in ({"budget_s": 0}, {"budget_s": "60"}, {"max_messages": 0}):
        with pytest.raises(ValueError, match=r"^args\."):
            builtin.validate_drain_args(bad)


# -- the backlog notice is said once ---------------------------------------------------------

def test_notice_not_repeated_when_the_head_then_fails(state, api, clock):
    settings, channel = telegram(state, api, clock)
    with state.engine.begin() as conn:  # a photo head: the notice goes as its own message
        outbox.enqueue(conn, "chart", kind="photo", payload=b"\x89PNG", now=clock.now())
        outbox.enqueue(conn, "after", now=clock.now())
    clock.advance(3600)
    api.fail("ok")          # the notice goes through ...
    api.fail("500", times=4)  # ... the photo does not (all retries)
    assert drain(settings, state, channel, clock) == 0
    assert len(api.texts()) == 1 and "Delayed delivery" in api.texts()[0]
    clock.advance(600)
    assert drain(settings, state, channel, clock) == 2
    assert sum("Delayed delivery" in t for t in api.texts()) == 1
    assert [r.method for r in api.delivered] == ["sendMessage", "sendPhoto", "sendMessage"]


def test_notice_not_repeated_when_the_head_is_rejected(state, api, clock, tmp_path):
    settings, channel = telegram(state, api, clock)
    with state.engine.begin() as conn:
        outbox.enqueue(conn, "gone", kind="document", payload_path=str(tmp_path / "missing.html"),
                       filename="r.html", now=clock.now())
        outbox.enqueue(conn, "next", now=clock.now())
    clock.advance(3600)
    assert drain(settings, state, channel, clock) == 1
    told, after = api.texts()  # the notice went out before the document, which was then rejected
    assert told.startswith("⏳ <b>Delayed delivery</b>: 2 messages were held") and after == "next"


def test_blank_text_is_not_queued(state, clock):
    with state.engine.begin() as conn:
        assert outbox.enqueue(conn, "", now=clock.now()) == []
        assert outbox.enqueue(conn, " \n\n<b> </b>\n", now=clock.now()) == []
        assert outbox.enqueue(conn, "x" * 4095 + "\n" * 6, now=clock.now()) != []
    assert [r.body for r in outbox.recent(state.engine)] == ["x" * 4095]


# -- refusals and rejections: Sentry once, visible in the CLI -------------------------------------

def test_blocked_chat_one_sentry_event_then_resumes(state, api, clock, receiver):
    settings, channel = telegram(state, api, clock, chat="-100666", SENTRY_DSN=receiver.dsn(secret="dsnsecret12345"))
    assert ops_sentry.init(settings)
    api.blocked.add("-100666")
    enqueue_texts(state.engine, ["one", "two"], clock.now())
    for _ in range(4):  # blocked, then three probes every 5 minutes, all refused
        assert drain(settings, state, channel, clock) == 0
        clock.advance(301)
    assert len(api.requests) == 4
    ops_sentry.flush()
    assert receiver.wait_for(lambda: receiver.events())
    (event,) = receiver.events()
    assert event["level"] == "error" and event["tags"]["component"] == "outbox"
    text = event.get("message") or event["logentry"]["message"]
    assert "telegram:-100666" in text and "bot was blocked" in text and "2 message(s) held" in text
    assert SECRET.encode() not in receiver.raw_everything()
    (chat,) = outbox.delivery_problems(state.engine).blocked
    assert chat.blocked_at < chat.blocked_checked_at  # since when it refuses, kept across probes
    api.blocked.clear()
    assert drain(settings, state, channel, clock) == 2
    assert outbox.delivery_problems(state.engine).blocked == []


def test_rejected_message_one_sentry_event_each(state, api, clock, receiver):
    settings, channel = telegram(state, api, clock, SENTRY_DSN=receiver.dsn(secret="dsnsecret12345"))
    assert ops_sentry.init(settings)
    enqueue_texts(state.engine, ["bad one", "fine"], clock.now())
    api.fail("400", description="Bad Request: message is too long")
    rejected_at = clock.now()
    assert drain(settings, state, channel, clock) == 1
    ops_sentry.flush()
    assert receiver.wait_for(lambda: receiver.events())
    (event,) = receiver.events()
    text = event.get("message") or event["logentry"]["message"]
    assert event["level"] == "error" and "rejected" in text and "message is too long" in text
    problems = outbox.delivery_problems(state.engine)
    assert problems.failed == 1 and problems.recent_failed[0].failed_at == rejected_at


def cli(capsys, monkeypatch, state, api, *argv, chat="-100666"):
    for key, value in {"DATABASE_URL": state.url, "OPSBENCH_STATE_URL": state.url, "OPSBENCH_HOME": str(state.home),
                       "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": chat, "TELEGRAM_API_BASE": api.url}.items():
        monkeypatch.setenv(key, value)
    reset_settings_cache()
    code = main(list(argv))
    out = capsys.readouterr()
    reset_settings_cache()
    return code, out.out + out.err


def test_alerts_and_status_show_blocked_chat_and_failed_messages(state, api, clock, capsys, monkeypatch, tmp_path):
    settings, channel = telegram(state, api, clock, chat="-100666")
    with state.engine.begin() as conn:
        outbox.enqueue(conn, "gone", kind="document", payload_path=str(tmp_path / "missing.html"),
                       filename="r.html", now=clock.now(), source="report:daily")
        outbox.enqueue(conn, "held", now=clock.now(), source="alerts:probe")
    api.blocked.add("-100666")
    assert drain(settings, state, channel, clock) == 0  # the document fails, then the chat refuses "held"
    code, out = cli(capsys, monkeypatch, state, api, "alerts")
    assert code == 1, out   # a refusing chat and undeliverable messages are problems a script sees
    assert "Outbox: 1 pending" in out
    assert "BLOCKED: Telegram chat -100666 refuses messages since" in out and "bot was blocked" in out
    assert "every 5m" in out and "opsbench telegram test" in out
    assert "FAILED: 1 message(s) rejected by Telegram for good" in out and "report:daily" in out
    assert "missing.html" in out
    code, out = cli(capsys, monkeypatch, state, api, "status")
    assert code == 1, out
    assert "delivery BLOCKED: Telegram chat -100666 refuses messages since" in out and "bot was blocked" in out
    assert "delivery FAILED: 1 message(s) rejected by Telegram for good" in out
    code, out = cli(capsys, monkeypatch, state, api, "status", "--format", "json")
    import json

    data = json.loads(out)
    assert data["delivery"]["failed"] == 1 and data["delivery"]["blocked"][0]["chat"] == "-100666"
    assert SECRET not in out


def test_retry_after_counts_from_the_answer_across_runs_and_processes(state, api, clock):
    """A 429 that arrives after waits inside the run: the next try is retry_after from the answer,
    and no drain (this process or a second one) asks the chat anything before then."""
    settings, channel = telegram(state, api, clock)
    enqueue_texts(state.engine, ["first", "second"], clock.now())
    picked = clock.now()
    api.fail("429", retry_after=40)   # waited out inside the run (within patience and budget)
    api.fail("429", retry_after=70)   # then more than the 60 s left of the budget
    assert drain(settings, state, channel, clock, budget_s=100) == 0
    answered = clock.now()
    assert answered - picked >= dt.timedelta(seconds=40)
    head = outbox.recent(state.engine)[-1]
    assert head.body == "first"
    assert head.next_attempt_at >= answered + dt.timedelta(seconds=70)   # not picked + 70
    asked = len(api.requests)
    # a second process (its own channel and client) and this one, both too early: no request at all
    _, other = telegram(state, api, clock)
    for ch in (other, channel):
        clock.advance(30)
        assert drain(settings, state, ch, clock, budget_s=100) == 0
    assert len(api.requests) == asked
    clock.advance(11)                                                   # 71 s after the answer
    assert drain(settings, state, other, clock, budget_s=100) == 2
    assert api.texts() == ["first", "second"]                          # nothing lost, nothing twice

"""Channels as plugins: email over a real SMTP server on 127.0.0.1, several channels at once, one of
them down, and the shape (no import circle, the outbox knows no channel by name)."""

from __future__ import annotations

import ast
import datetime as dt
import email
import socket
import threading
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer

from ops.alerting import channels, outbox
from ops.alerting import manager as alerts
from ops.alerting.email.channel import EmailChannel
from ops.contract import Finding, JobResult
from ops.core.errors import Outcome
from ops.core.settings import SettingsError, load_settings

REPO = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.timezone.utc)
STEP = dt.timedelta(minutes=5)
EVIDENCE = [{"user_id": 17, "balance": -40}, {"user_id": 23, "balance": -5}]


class Inbox:
    """aiosmtpd handler: keeps every message; `refuse` makes the next DATA answer that code."""

    def __init__(self):
        self.mails: list[email.message.EmailMessage] = []
        self.refuse: list[str] = []
        self.unknown: set[str] = set()      # recipients answered 550
        self.got = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.unknown:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            return self.refuse.pop(0)
        self.mails.append(email.message_from_bytes(envelope.content, policy=policy.default))
        self.mails[-1]["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.got.set()
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()
    port = free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    inbox.port, inbox.controller = port, ctl
    yield inbox
    ctl.stop()


def start_server(inbox: Inbox, port: int) -> Controller:
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    return ctl


def finding(severity="critical") -> JobResult:
    return JobResult(findings=[Finding(rule="negative_balance", severity=severity, summary="2 users below zero",
                                       evidence=EVIDENCE, command="opsbench check negative_balances")],
                     rules={"negative_balance"})


def email_env(port: int, **extra) -> dict:
    return dict(OPSBENCH_EMAIL_TO="founder@example.com, oncall@example.com", OPSBENCH_EMAIL_FROM="ops@example.com",
                OPSBENCH_SMTP_HOST="127.0.0.1", OPSBENCH_SMTP_PORT=str(port), OPSBENCH_SMTP_TLS="none", **extra)


def drain_all(settings, state, clock, **kw) -> int:
    chans = channels.active(settings, state.engine, clock=clock.monotonic, sleep=clock.sleep)
    return outbox.drain(settings, state.engine, clock=clock.now, sleep=clock.sleep, runtime=_Runtime(chans), **kw)


class _Runtime:
    """The channels a drain uses, as a runtime shares them (one set per test)."""

    def __init__(self, chans):
        self.chans = chans

    def shared(self, key, make):
        return self.chans


def rows(state):
    return list(reversed(outbox.recent(state.engine, 1000)))


# -- email on its own ------------------------------------------------------------------------------------------

def test_firing_and_resolved_arrive_as_emails_with_the_evidence(state, smtp, clock):
    settings = state.settings(**email_env(smtp.port))
    alerts.record_result(state.engine, "reconcile", finding(), clock.now(), settings)
    # the chat (the console here) and email each got their own row
    assert sorted(r.destination for r in rows(state)) == ["email", "main"]
    assert drain_all(settings, state, clock) == 2
    (mail,) = smtp.mails
    assert mail["From"] == "ops@example.com"
    assert mail["X-Envelope-To"] == "founder@example.com, oncall@example.com"
    assert "FIRING critical: negative_balance" in mail["Subject"] and settings.environment in mail["Subject"]
    body = mail.get_content()
    assert "2 users below zero" in body and "Evidence (2 of 2 rows):" in body
    assert "user_id=17, balance=-40" in body and "user_id=23, balance=-5" in body
    assert "Reproduce: opsbench check negative_balances" in body
    assert "<" not in body   # plain text: no chat markup leaks into the email
    # two good evaluations resolve it: one more email, no edit to send by email
    for i in (1, 2):
        alerts.record_result(state.engine, "reconcile", JobResult(rules={"negative_balance"}),
                             clock.now() + i * STEP, settings)
    assert [r.kind for r in rows(state) if r.destination == "email"] == ["text", "text"]
    clock.advance(2 * STEP.total_seconds())
    drain_all(settings, state, clock)
    assert len(smtp.mails) == 2
    assert "RESOLVED" in smtp.mails[1]["Subject"] and "Resolved after 10m." in smtp.mails[1].get_content()
    assert {r.status for r in rows(state)} == {"sent"}
    assert {r.channel for r in rows(state) if r.destination == "email"} == \
        {"email:founder@example.com,oncall@example.com"}


def test_a_message_the_server_rejects_for_good_is_failed_and_the_queue_moves_on(state, smtp, clock):
    settings = state.settings(**email_env(smtp.port))
    ch = channels.connect("email", settings)
    with state.engine.begin() as conn:
        outbox.enqueue(conn, "first <b>big</b>", destination="email", now=clock.now())
        outbox.enqueue(conn, "second", destination="email", now=clock.now())
    smtp.refuse.append("552 message too big")
    assert outbox.drain(settings, state.engine, ch, clock=clock.now, sleep=clock.sleep) == 1
    assert [(r.status, r.destination) for r in rows(state)] == [("failed", "email"), ("sent", "email")]
    assert "552" in rows(state)[0].last_error
    assert smtp.mails[0]["Subject"].endswith("second")


def test_a_temporary_refusal_is_retried_later_on_the_same_row(state, smtp, clock):
    settings = state.settings(**email_env(smtp.port))
    ch = channels.connect("email", settings)
    with state.engine.begin() as conn:
        outbox.enqueue(conn, "disk almost full", destination="email", now=clock.now())
    smtp.refuse.append("451 try again later")
    assert outbox.drain(settings, state.engine, ch, clock=clock.now, sleep=clock.sleep) == 0
    (row,) = rows(state)
    assert row.status == "pending" and row.next_attempt_at > clock.now()
    clock.advance((row.next_attempt_at - clock.now()).total_seconds() + 1)
    assert outbox.drain(settings, state.engine, ch, clock=clock.now, sleep=clock.sleep) == 1
    assert [m["Subject"] for m in smtp.mails] == ["disk almost full"]


def test_the_channel_says_what_an_smtp_failure_means(smtp):
    port = free_port()  # nothing listens here
    down = EmailChannel("127.0.0.1", port, "ops@example.com", ["a@example.com"], tls="none")
    from ops.alerting.channel import OutgoingMessage
    from ops.core.errors import DeliveryError

    with pytest.raises(DeliveryError) as err:
        down.send(OutgoingMessage("text", "subject\n\nbody"))
    assert down.outcome(err.value) is Outcome.retry_later
    # a login over a connection without TLS is refused by us, before any password is sent
    clear = EmailChannel("127.0.0.1", smtp.port, "ops@example.com", ["a@example.com"], user="ops",
                         password="hunter2-secret", tls="auto")
    with pytest.raises(DeliveryError) as err:
        clear.send(OutgoingMessage("text", "subject\n\nbody"))
    assert clear.outcome(err.value) is Outcome.refused and "hunter2-secret" not in str(err.value)
    assert smtp.mails == []


def test_a_refusing_server_is_reported_once_held_and_probed_until_it_accepts(state, smtp, clock, caplog):
    import logging

    settings = state.settings(**email_env(smtp.port))
    ch = channels.connect("email", settings)
    smtp.unknown |= {"founder@example.com", "oncall@example.com"}
    with state.engine.begin() as conn:
        outbox.enqueue(conn, "one", destination="email", now=clock.now())
        outbox.enqueue(conn, "two", destination="email", now=clock.now())
    with caplog.at_level(logging.ERROR, logger="opsbench.outbox"):
        for _ in range(3):   # each probe after the hold: one try, no second report
            assert outbox.drain(settings, state.engine, ch, clock=clock.now, sleep=clock.sleep) == 0
            clock.advance(301)
    assert len([r for r in caplog.records if "refuses messages" in r.getMessage()]) == 1
    (held,) = outbox.delivery_problems(state.engine).blocked
    assert held.configured_chat_id == ch.key and "550" in held.blocked_reason
    assert [r.status for r in rows(state)] == ["pending", "pending"]   # nothing dropped
    from ops.cli.alerts_cmd import delivery_lines

    said = delivery_lines(outbox.delivery_problems(state.engine), clock.now(), lambda t: t.strftime("%H:%M"))
    assert said[0].startswith(f"BLOCKED: {ch.key} refuses messages since 12:00") and "OPSBENCH_SMTP_" in said[1]
    smtp.unknown.clear()
    assert outbox.drain(settings, state.engine, ch, clock=clock.now, sleep=clock.sleep) == 2
    assert [m.get_content().strip() for m in smtp.mails] == [
        "⏳ Delayed delivery: 2 messages were held for 15m; delivering in order.", "one", "two"]
    assert outbox.delivery_problems(state.engine).blocked == []


# -- several channels, one down --------------------------------------------------------------------------------

def test_email_down_holds_only_email_and_catches_up_later(state, api, clock):
    port = free_port()   # the SMTP server is not up yet
    settings = state.telegram_settings(api, **email_env(port))
    alerts.record_result(state.engine, "reconcile", finding(), clock.now(), settings)
    assert drain_all(settings, state, clock) == 1
    assert len(api.texts()) == 1 and "negative_balance" in api.texts()[0]     # Telegram got it at once
    email_row = next(r for r in rows(state) if r.destination == "email")
    assert email_row.status == "pending" and email_row.attempts == 1 and email_row.last_error
    # later alerts still reach Telegram while email is down
    alerts.record_result(state.engine, "probe", JobResult(findings=[Finding(rule="error_rate", severity="warning",
                                                                            summary="error rate 9 %")],
                                                          rules={"error_rate"}), clock.now() + STEP, settings)
    clock.advance(STEP.total_seconds())
    drain_all(settings, state, clock)
    assert len(api.texts()) == 2 and "error_rate" in api.texts()[1]
    # the server comes up: both emails go out, in order, nothing dropped
    inbox = Inbox()
    ctl = start_server(inbox, port)
    try:
        clock.advance(600)
        assert drain_all(settings, state, clock) == 2
    finally:
        ctl.stop()
    subjects = [m["Subject"] for m in inbox.mails]
    # held 15 minutes: the email destination says so once, as the chat would
    assert subjects[0] == "⏳ Delayed delivery: 2 messages were held for 15m; delivering in order."
    assert "negative_balance" in subjects[1] and "error_rate" in subjects[2] and len(subjects) == 3
    assert {r.status for r in rows(state)} == {"sent"} and len(api.texts()) == 2   # Telegram not repeated


def test_telegram_down_does_not_hold_email(state, api, smtp, clock):
    settings = state.telegram_settings(api, **email_env(smtp.port))
    api.fail("500", times=4)   # every try of the client's bounded retries
    alerts.record_result(state.engine, "reconcile", finding(), clock.now(), settings)
    assert drain_all(settings, state, clock, budget_s=120) == 1
    assert len(smtp.mails) == 1 and api.texts() == []
    main = next(r for r in rows(state) if r.destination == "main")
    assert main.status == "pending" and main.attempts == 1 and main.next_attempt_at > clock.now()
    # Telegram answers again: the held row goes out on Telegram, and email is not sent twice
    clock.advance(600)
    assert drain_all(settings, state, clock) == 1
    assert len(api.texts()) == 1 and "negative_balance" in api.texts()[0] and len(smtp.mails) == 1


# -- settings -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("env, var", [
    ({"OPSBENCH_EMAIL_TO": "not-an-address"}, "OPSBENCH_EMAIL_TO"),
    ({"OPSBENCH_SMTP_PORT": "70000"}, "OPSBENCH_SMTP_PORT"),
    ({"OPSBENCH_SMTP_TLS": "maybe"}, "OPSBENCH_SMTP_TLS"),
    ({"OPSBENCH_EMAIL_FROM": "a@example.com, b@example.com"}, "OPSBENCH_EMAIL_FROM"),
    ({"OPSBENCH_SMTP_HOST": "smtp://x"}, "OPSBENCH_SMTP_HOST"),
])
def test_a_wrong_email_setting_names_its_variable(env, var):
    with pytest.raises(SettingsError) as err:
        load_settings(**env)
    assert str(err.value).startswith(f"{var}: expected")


def test_destinations_follow_the_settings(state):
    assert channels.destinations(state.settings()) == ["main"]
    assert channels.destinations(state.settings(OPSBENCH_EMAIL_TO="a@example.com")) == ["main", "email"]
    with pytest.raises(ValueError):
        with state.engine.begin() as conn:
            outbox.enqueue(conn, "x", destination="pager")


# -- the shape ------------------------------------------------------------------------------------------------

def _alerting_imports() -> dict[str, set[str]]:
    """ops.alerting module -> the ops.alerting modules it imports (module level or inside functions)."""
    from test_architecture import _imports, _module_name

    graph: dict[str, set[str]] = {}
    for p in sorted((REPO / "ops" / "alerting").rglob("*.py")):
        here = _module_name(p)
        graph[here] = {n for _, n in _imports(p) if n.startswith("ops.alerting.") and n != here}
    modules = set(graph)
    # `from ops.alerting.telegram import html` names the module html, not the package
    return {m: {n for n in deps if n in modules} for m, deps in graph.items()}


def test_no_import_circle_in_alerting():
    graph = _alerting_imports()
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(m: str, path: list[str]) -> bool:
        state[m] = 1
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                cycle.extend(path + [m, n])
                return True
            if n not in state and visit(n, path + [m]):
                return True
        state[m] = 2
        return False

    for m in sorted(graph):
        if m not in state and visit(m, []):
            break
    assert cycle == []


def test_the_outbox_and_manager_know_no_channel_by_name():
    graph = _alerting_imports()
    for core in ("ops.alerting.outbox", "ops.alerting.manager", "ops.alerting.channel", "ops.alerting.notices"):
        assert not {n for n in graph[core] if n.startswith(("ops.alerting.telegram", "ops.alerting.email",
                                                             "ops.alerting.console"))}, core
    source = (REPO / "ops" / "alerting" / "outbox.py").read_text()
    assert "isinstance" not in source and "Telegram" not in ast.get_docstring(ast.parse(source)).split("\n")[0]

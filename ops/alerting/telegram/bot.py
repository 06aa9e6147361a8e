"""The bot's side of the conversation: one Telegram update in, its effects out.

`handle(conn, update, ...)` runs inside the transaction that moves the stored
getUpdates offset past the update (ops/daemon/telegram_poller.py), so an
update is acted on exactly once however often Telegram delivers it, and a
process killed halfway acts on it again from the start.

Who may act:
- only updates from TELEGRAM_CHAT_ID (and its topic, when TELEGRAM_THREAD_ID
  is set) are acted on; others are recorded and ignored;
- reading (/status, /alerts, /help, Details) is open to the chat; anything that
  changes state (Ack, Silence, Resolve, /silence, /unsilence, /ack, /digest)
  only to the user ids in TELEGRAM_ADMIN_IDS; anyone else gets a polite
  refusal, and every action or refusal is a row in opsbench.telegram_actions.

Replies, edits and button answers go through the outbox, like every message.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

import queries
from ops.alerting import maintenance_store, manager, outbox, tally, wording
from ops.alerting.telegram import html as messages
from ops.alerting.telegram import incidents
from ops.contract import AlertState
from ops.core.clock import parse_duration
from ops.core.settings import Settings

COMMANDS: list[tuple[str, str]] = [
    ("status", "what needs you now"),
    ("alerts", "firing alerts and silences"),
    ("silence", "PATTERN DURATION [reason]: hold back matching alerts"),
    ("unsilence", "ID: end a silence"),
    ("maintenance", "WHEN REASON: hold alerts below critical, e.g. /maintenance 30m deploy ('Sun 02:00-03:00' repeats)"),
    ("ack", "KEY: acknowledge an alert (no more repeats)"),
    ("digest", "yesterday's digest, now"),
    ("help", "what I understand"),
]
CHANGES = {"ack", "s1h", "s4h", "s9", "resolve", "silence", "unsilence", "digest", "maintenance"}


def _q():
    return queries.load("state/incidents")


@dataclass
class Outcome:
    """What handling one update did, for the caller (the poller runs jobs after the commit)."""

    action: str = "none"
    outcome: str = "ignored"
    run_jobs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    name: str

    @classmethod
    def of(cls, user: dict[str, Any] | None) -> "Actor":
        user = user or {}
        name = f"@{user['username']}" if user.get("username") else \
            " ".join(p for p in (user.get("first_name"), user.get("last_name")) if p) or "someone"
        uid = user.get("id")
        return cls(int(uid) if isinstance(uid, int) else None, name)


def _audit(conn: Connection, update_id: int, actor: Actor, chat_id: Any, message_id: Any, action: str,
           target: str | None, outcome: str, detail: str | None, now: dt.datetime) -> None:
    _q().audit.execute(conn, at=now, update_id=update_id, user_id=actor.user_id, user_name=actor.name[:100],
                       chat_id=str(chat_id) if chat_id is not None else None,
                       message_id=int(message_id) if isinstance(message_id, int) else None, action=action[:40],
                       target=(target or "")[:300] or None, outcome=outcome, detail=(detail or "")[:500] or None)


def _ours(settings: Settings, chat: dict[str, Any] | None, thread_id: Any) -> bool:
    if not chat or str(chat.get("id")) != str(settings.telegram_chat_id):
        return False
    if settings.telegram_thread_id is not None and thread_id != settings.telegram_thread_id:
        return False
    return True


def _refusal(actor: Actor) -> str:
    uid = f" (your id is {actor.user_id})" if actor.user_id is not None else ""
    return (f"Sorry {actor.name}, only the admins in TELEGRAM_ADMIN_IDS can change alerts{uid}. "
            "Reading (/status, /alerts, Details) is open to everyone here.")


def handle(conn: Connection, update: dict[str, Any], settings: Settings, now: dt.datetime,
           bot_username: str | None = None) -> Outcome:
    """Act on one update inside the caller's transaction."""
    update_id = int(update.get("update_id", 0))
    if "callback_query" in update:
        return _callback(conn, update_id, update["callback_query"], settings, now)
    msg = update.get("message")
    if isinstance(msg, dict) and isinstance(msg.get("text"), str) and msg["text"].startswith("/"):
        return _command(conn, update_id, msg, settings, now, bot_username)
    return Outcome()  # chatter, edits, joins: nothing to do


# -- buttons -------------------------------------------------------------------

def _callback(conn: Connection, update_id: int, cq: dict[str, Any], settings: Settings,
              now: dt.datetime) -> Outcome:
    actor = Actor.of(cq.get("from"))
    message = cq.get("message") or {}
    chat, message_id = message.get("chat") or {}, message.get("message_id")
    token = str(cq.get("data") or "")[:64]
    answer_id = str(cq.get("id") or "")

    def answer(text: str, outcome: str, action: str = "button", target: str | None = None,
               detail: str | None = None) -> Outcome:
        if answer_id:
            outbox.enqueue(conn, text, kind="answer", callback_query_id=answer_id, source="telegram", now=now)
        _audit(conn, update_id, actor, chat.get("id"), message_id, action, target, outcome, detail or text, now)
        return Outcome(action, outcome)

    if not _ours(settings, chat, message.get("message_thread_id")):
        # answered (a press must not spin forever), recorded, not acted on
        return answer("This bot acts only in the chat it was set up for. Nothing done.", "ignored",
                      detail="another chat")
    row = _q().button.execute(conn, token=token).first() if token else None
    if row is None:
        return answer("This button is not one of mine (or it expired). Nothing done.", "unknown",
                      detail=f"unknown callback_data {token[:20]!r}")
    action, target = row.action, f"incident {row.incident_id}"
    if row.message_id is None or int(row.message_id) != message_id or str(row.chat_id) != str(chat.get("id")):
        return answer("This button belongs to another message. Nothing done.", "refused", action, target,
                      "callback_data from another message")
    if action in CHANGES and actor.user_id not in settings.admin_ids:
        return answer(_refusal(actor), "refused", action, target)
    if action == "details":
        outbox.enqueue(conn, incidents.details(conn, row.incident_id, settings), kind="reply",
                       incident_id=row.incident_id, source="telegram", now=now, silent=True)
        return answer("Details below.", "done", action, target)

    # the alerts the message is about, in the episode it announced
    episodes = dict(row.episodes or {})
    alerts = list(_q().alerts_of.execute(conn, keys=json.dumps(list(row.keys))))
    current = [a for a in alerts if a.state in (AlertState.pending, AlertState.firing) and
               incidents.same_episode(a.started_at, episodes.get(a.key))]
    if not current:
        states = ", ".join(f"{a.key} is {a.state}" for a in alerts) or "its alerts are gone"
        return answer(f"Changed meanwhile: {states}. Nothing done.", "stale", action, target)
    if row.used_at is not None:
        when = row.used_at.astimezone(settings.tz).strftime("%H:%M")
        return answer(f"Already done by {row.used_by or 'someone'} at {when}.", "stale", action, target)

    keys = [a.key for a in current]
    if action == "ack":
        _q().ack.execute(conn, id=row.incident_id, by=actor.name, at=now)
        text = f"Acked by {actor.name}: no more repeats for this one."
    elif action in ("s1h", "s4h", "s9"):
        until = incidents.silence_end(action, settings, now)
        ids = [manager.add_silence_in(conn, incidents.exact_pattern(k), until, f"from Telegram by {actor.name}",
                                      now, created_by=actor.name) for k in keys]
        _q().add_silences.execute(conn, id=row.incident_id, silence_ids=json.dumps(ids))
        text = f"Silenced until {until.astimezone(settings.tz):%a %H:%M} ({settings.report_tz})."
    elif action == "resolve":
        manager.close(conn, f"resolved from Telegram by {actor.name}", now, keys)
        text = "Resolved. If the check still finds it, it fires again as a new alert."
    else:
        return answer("This button does nothing I know of.", "unknown", action, target)
    _q().use_button.execute(conn, token=token, at=now, by=actor.name)
    manager.refresh_incidents(conn, [row.incident_id], settings, now, source="telegram")
    return answer(text, "done", action, f"{target}: {', '.join(keys)}")


# -- commands ------------------------------------------------------------------

def _command(conn: Connection, update_id: int, msg: dict[str, Any], settings: Settings, now: dt.datetime,
             bot_username: str | None) -> Outcome:
    actor = Actor.of(msg.get("from"))
    chat, message_id = msg.get("chat") or {}, msg.get("message_id")
    head, _, rest = msg["text"].strip().partition(" ")
    name, _, addressed = head[1:].partition("@")
    name = name.lower()
    if addressed and bot_username and addressed.lower() != bot_username.lower():
        return Outcome()  # a command for another bot in the same group
    if not _ours(settings, chat, msg.get("message_thread_id")):
        _audit(conn, update_id, actor, chat.get("id"), message_id, f"/{name}", None, "ignored", "another chat", now)
        return Outcome(f"/{name}", "ignored")

    def reply(text: str, outcome: str, target: str | None = None, detail: str | None = None) -> Outcome:
        outbox.enqueue(conn, text, reply_to=message_id if isinstance(message_id, int) else None,
                       source="telegram", now=now, silent=True)
        _audit(conn, update_id, actor, chat.get("id"), message_id, f"/{name}", target, outcome,
               detail or messages.to_plain(text).splitlines()[0][:200], now)
        return Outcome(f"/{name}", outcome)

    known = {c for c, _ in COMMANDS} | {"start"}
    if name not in known:
        return reply(f"I don't know /{messages.escape(name)}. /help lists what I understand.", "unknown")
    if name in CHANGES and actor.user_id not in settings.admin_ids:
        return reply(messages.escape(_refusal(actor)), "refused")
    try:
        args = shlex.split(rest)
    except ValueError:
        return reply("I could not read that: an unclosed quote?", "failed")

    if name in ("help", "start"):
        lines = ["<b>opsbench</b> answers:"] + [f"/{c} {messages.escape(d)}" for c, d in COMMANDS]
        lines.append("Buttons under each alert: Ack, Silence, Resolve, Details.")
        return reply("\n".join(lines), "done")
    if name == "status":
        return reply(status_text(conn, settings, now), "done")
    if name == "alerts":
        return reply(alerts_text(conn, settings, now), "done")
    if name == "silence":
        if len(args) < 2:
            return reply("Usage: /silence PATTERN DURATION [reason], e.g. /silence 'error_rate*' 2h deploy", "failed")
        pattern, length, reason = args[0], args[1], " ".join(args[2:]) or f"from Telegram by {actor.name}"
        try:
            until = now + parse_duration(length)
        except ValueError as err:
            return reply(f"DURATION: {messages.escape(err)}", "failed")
        sid = manager.add_silence_in(conn, pattern, until, reason, now, created_by=actor.name)
        return reply(f"🔕 Silence #{sid}: <code>{messages.escape(pattern)}</code> until "
                     f"{until.astimezone(settings.tz):%a %H:%M} ({messages.escape(reason)})", "done", f"silence {sid}")
    if name == "unsilence":
        if len(args) != 1 or not args[0].lstrip("#").isdigit():
            return reply("Usage: /unsilence ID (the number /alerts shows)", "failed")
        sid = int(args[0].lstrip("#"))
        if not manager.remove_silence_in(conn, sid, now):
            return reply(f"No active silence #{sid}.", "failed", f"silence {sid}")
        return reply(f"Silence #{sid} ended.", "done", f"silence {sid}")
    if name == "maintenance":
        if not args:
            return reply(maintenance_text(conn, settings, now) + "\nUsage: /maintenance WHEN REASON, e.g. "
                         "/maintenance 30m deploy or /maintenance 'Sun 02:00-03:00' weekly deploy", "done")
        when, reason = args[0], " ".join(args[1:]) or f"from Telegram by {actor.name}"
        try:
            wid, window = maintenance_store.add(conn, when, reason, settings.tz, now, (), actor.name)
        except ValueError as err:
            return reply(f"WHEN: {messages.escape(err)}", "failed")
        nxt = window.schedule.next_after(now, settings.tz)
        until = f"until {nxt[1].astimezone(settings.tz):%a %H:%M}" if nxt and nxt[0] <= now else \
            (f"from {nxt[0].astimezone(settings.tz):%a %H:%M}" if nxt else "")
        return reply(f"🛠 Maintenance #{wid}: {messages.escape(window.schedule.describe(settings.tz))}, "
                     f"{until}; alerts below critical are held, one summary when it closes "
                     f"({messages.escape(reason)})", "done", f"maintenance {wid}")
    if name == "ack":
        if len(args) != 1:
            return reply("Usage: /ack KEY (as /alerts shows it)", "failed")
        row = _q().ack_key.execute(conn, key=args[0], by=actor.name, at=now).first()
        if row is None:
            return reply(f"No pending or firing alert <code>{messages.escape(args[0])}</code>.", "failed", args[0])
        if row.incident_id is not None:
            manager.refresh_incidents(conn, [row.incident_id], settings, now, source="telegram")
        return reply(f"👀 Acked <code>{messages.escape(row.key)}</code>: no more repeats.", "done", row.key)
    if name == "digest":
        out = reply("Building yesterday's digest; it follows in a moment.", "done", "daily_digest")
        out.run_jobs.append("daily_digest")
        return out
    return reply("Nothing to do.", "unknown")


def status_text(conn: Connection, settings: Settings, now: dt.datetime) -> str:
    firing = list(queries.load("state/alerts").firing.execute(conn))
    silences = list(queries.load("state/alerts").active_silences.execute(conn, at=now))
    pending = int(queries.load("state/outbox").depth.execute(conn).scalar_one())
    env = messages.escape(settings.environment)
    count = tally.tally(firing)     # the one count every surface prints
    if not count.open:
        head = f"🟢 <b>All clear</b> · {env}"
    else:
        icon = "🔴" if count.critical else "🟠" if count.warning else "🔵"
        head = f"{icon} <b>Alerts: {messages.escape(count.headline())}</b> · {env}"
    lines = [head]
    shown = [(f.alert, f.echo_words()) for f in count.faults] + [(r, "") for r in count.notes]
    for r, echo in shown[:5]:
        lines.append(f"{messages.SEVERITY_ICON.get(r.severity, '⚪')} <code>{messages.escape(r.key)}</code> "
                     f"for {messages.human_duration(now - r.started_at) if r.started_at else '?'}"
                     + (f" ({messages.escape(echo)})" if echo else ""))
    if len(shown) > 5:
        lines.append(f"… and {len(shown) - 5} more (/alerts)")
    windows = _in_force(conn, settings, now)
    lines.append(f"{len(silences)} silence(s) · {pending} message(s) waiting to be sent")
    if windows:
        lines.append("🛠 In maintenance: " + ", ".join(messages.escape(w) for w in windows))
    return "\n".join(lines)


def _in_force(conn: Connection, settings: Settings, now: dt.datetime) -> list[str]:
    """The maintenance windows in force now, in words ("#2 deploy until 03:00")."""
    out = []
    for w in maintenance_store.active(conn):
        occ = w.schedule.occurrence_at(now, settings.tz)
        if occ:
            out.append(f"#{w.id} {w.reason} until {occ[1].astimezone(settings.tz):%H:%M}")
    return out


def maintenance_text(conn: Connection, settings: Settings, now: dt.datetime) -> str:
    windows = maintenance_store.active(conn)
    lines = [f"<b>Maintenance windows ({len(windows)})</b>"]
    for w in windows:
        nxt = w.schedule.next_after(now, settings.tz)
        when = "ended" if nxt is None else ("in force now" if nxt[0] <= now
                                            else f"next {nxt[0].astimezone(settings.tz):%a %H:%M}")
        lines.append(f"#{w.id} {messages.escape(w.schedule.describe(settings.tz))} ({when}): "
                     f"{messages.escape(w.scope)}, {messages.escape(w.reason)}")
    return "\n".join(lines)


ALERTS_SHOWN = 10
ALERT_SUMMARY = 70


def alerts_text(conn: Connection, settings: Settings, now: dt.datetime) -> str:
    """A phone screen, not a wall: one line per alert (the full key, as /ack takes it, then only what the key
    does not already say, cut between words), the first ten; `opsbench alerts` has them all."""
    firing = list(queries.load("state/alerts").firing.execute(conn))
    silences = list(queries.load("state/alerts").active_silences.execute(conn, at=now))
    count = tally.tally(firing)     # the one count every surface prints
    shown = [(f.alert, f.echo_words()) for f in count.faults] + [(r, "") for r in count.notes]
    lines = [f"<b>Alerts: {messages.escape(count.headline())}</b>"]
    for r, echo in shown[:ALERTS_SHOWN]:
        since = messages.human_duration(now - r.started_at) if r.started_at else "?"
        flags = []
        if r.held_reason:
            flags.append(f"held: {r.held_reason}")
        if r.acked_by:
            flags.append(f"acked by {r.acked_by}")
        if echo:
            flags.append(echo)
        extra = f" [{messages.escape('; '.join(flags))}]" if flags else ""
        summary = wording.clip(wording.news(r.key, r.summary), ALERT_SUMMARY)
        lines.append(f"{messages.SEVERITY_ICON.get(r.severity, '⚪')} <code>{messages.escape(r.key)}</code> "
                     f"{since}{extra}: {messages.escape(summary)}")
    if len(shown) > ALERTS_SHOWN:
        lines.append(f"… and {len(shown) - ALERTS_SHOWN} more (<code>opsbench alerts</code>)")
    lines.append(f"<b>Silences ({len(silences)})</b>")
    for s in silences:
        lines.append(f"#{s.id} <code>{messages.escape(s.pattern)}</code> until "
                     f"{s.ends_at.astimezone(settings.tz):%a %H:%M}: {messages.escape(s.reason)}")
    if maintenance_store.active(conn):
        lines.append(maintenance_text(conn, settings, now))
    return "\n".join(lines)

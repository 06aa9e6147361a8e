"""One Telegram message per incident, edited in place as it changes.

An incident is the set of alerts announced together in one FIRING message.
That message carries buttons (Ack, Silence 1 h / 4 h / until 09:00, Resolve,
Details) and is the one the founder sees change:

- when an alert of it resolves (or is acked, silenced, resolved by hand) the
  message is edited (`editMessageText`) to say so at the top, and a short
  reply makes the phone notice a resolution;
- a repeat while it keeps firing is a short reply ("still firing, 4h"), not
  a new copy of the whole text; an acked incident is not repeated;
- everything goes through the outbox like a send, in the transaction of the
  state change, so order, retry_after and no-loss hold for edits too. The
  Telegram message id is looked up when an edit is sent (ops.alerting.outbox).

The incident itself (which alerts were announced together) is the manager's;
this module is how the chat shows it: the first text with its buttons, the
edited view, the Details reply and the short update replies
(ops/alerting/telegram/render.py turns notices into these rows).

Buttons carry a short random token as callback_data (under 64 bytes); the
token maps to (incident, action) in the state store, so a forged one finds
nothing, and `episodes` (alert key -> started_at) tells a press on an alert
that changed since from one that is current.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy.engine import Connection

import queries
from ops.alerting.notices import AlertNotice
from ops.alerting.telegram import html as messages
from ops.contract import AlertState, Severity
from ops.core.settings import Settings

# callback actions: ack, three silences, resolve by hand, details (read-only)
ACTIONS = ("ack", "s1h", "s4h", "s9", "resolve", "details")
SILENCES = {"s1h": dt.timedelta(hours=1), "s4h": dt.timedelta(hours=4)}
MORNING = (9, 0)          # "Silence until 09:00" in REPORT_TZ
BODY_LIMIT = 3600         # the first text, leaving room for status lines added by edits
DETAIL_ROWS = 20          # evidence rows a Details reply shows


def _q():
    return queries.load("state/incidents")


def _iso(ts: dt.datetime | None) -> str | None:
    return ts.isoformat() if ts else None


def same_episode(started_at: dt.datetime | None, stored: str | None) -> bool:
    """Is this alert row still in the episode the message announced? (Compared as instants: the
    database hands timestamps back in its session's zone.)"""
    if started_at is None or stored is None:
        return started_at is None and stored is None
    return started_at == dt.datetime.fromisoformat(stored)


def first_message(conn: Connection, incident_id: int, body: str, now: dt.datetime) -> tuple[str, dict]:
    """The FIRING message of a new incident: its text (cut to leave room for edits) and buttons.
    Both are stored: edits re-use the text, presses find the buttons."""
    if messages.utf16_len(body) > BODY_LIMIT:
        # one message, so that edits and buttons have one thing to point at; Details has the rest
        body = messages.split_html(body, BODY_LIMIT - 80)[0] + "\n<i>… cut to fit; Details shows the evidence</i>"
    _q().set_body.execute(conn, id=incident_id, body=body)
    tokens = {action: secrets.token_urlsafe(9) for action in ACTIONS}
    for action, token in tokens.items():
        _q().add_button.execute(conn, token=token, incident_id=incident_id, action=action, created_at=now)
    return body, keyboard(tokens, acked=False, closed=False)


def pack(pairs: list[tuple[Any, Any]], render: Callable[[list[Any]], str],
         limit: int = BODY_LIMIT) -> list[list[tuple[Any, Any]]]:
    """(alert, notice) pairs in groups whose message (`render` of the notices) fits one Telegram
    message with room for edits: every alert is shown, most severe first, none cut away."""
    ordered = sorted(pairs, key=lambda p: (Severity(p[1].severity).rank, p[1].key))
    groups: list[list[tuple[Any, Any]]] = []
    for pair in ordered:
        if groups and messages.utf16_len(render([n for _, n in groups[-1]] + [pair[1]])) <= limit:
            groups[-1].append(pair)
        else:
            groups.append([pair])
    return groups


def keyboard(tokens: Mapping[str, str], *, acked: bool, closed: bool) -> dict:
    """The inline keyboard for an incident message, from its button tokens (action -> callback_data)."""
    morning = f"{MORNING[0]:02d}:{MORNING[1]:02d}"
    if closed:
        rows = [[("🔎 Details", "details")]]
    else:
        rows = [[("👀 Ack", "ack"), ("🔎 Details", "details")] if not acked else [("🔎 Details", "details")],
                [("🔕 1h", "s1h"), ("🔕 4h", "s4h"), (f"🔕 until {morning}", "s9")],
                [("✅ Resolve", "resolve")]]
    return {"inline_keyboard": [[{"text": text, "callback_data": tokens[action]} for text, action in row
                                 if action in tokens] for row in rows]}


def silence_end(action: str, settings: Settings, now: dt.datetime) -> dt.datetime:
    from ops.core.clock import next_local_time

    if action in SILENCES:
        return now + SILENCES[action]
    return next_local_time(now, settings.tz, *MORNING)


def exact_pattern(key: str) -> str:
    """A silence pattern that matches exactly this key (fnmatch's special characters escaped)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in key)


def _local(ts: dt.datetime, settings: Settings) -> str:
    return ts.astimezone(settings.tz).strftime("%H:%M")


def render(conn: Connection, incident_id: int, settings: Settings, now: dt.datetime) -> tuple[str, dict, bool]:
    """The incident message as it should read now: status lines on top of the first text.
    Returns (html, keyboard, every alert over)."""
    inc = _q().get.execute(conn, id=incident_id).one()
    episodes = dict(inc.episodes or {})
    rows = {r.key: r for r in _q().alerts_of.execute(conn, keys=json.dumps(list(inc.keys)))}
    lines: list[str] = []
    over = 0
    for key in inc.keys:
        r = rows.get(key)
        same = r is not None and same_episode(r.started_at, episodes.get(key))
        if same and r.state in (AlertState.pending, AlertState.firing):
            continue
        over += 1
        if same and r.resolved_at and r.started_at:
            lasted = messages.human_duration(r.resolved_at - r.started_at)
            lines.append(f"✅ <b>RESOLVED</b> after {lasted} · {_local(r.resolved_at, settings)} · "
                         f"<code>{messages.escape(key)}</code>")
        else:
            lines.append(f"✅ <b>RESOLVED</b> · <code>{messages.escape(key)}</code>")
    closed = over == len(inc.keys)
    buttons = {b.action: b for b in _q().buttons.execute(conn, incident_id=incident_id)}
    if "resolve" in buttons and buttons["resolve"].used_at is not None:
        b = buttons["resolve"]
        lines.append(f"✋ Resolved by {messages.escape(b.used_by or 'someone')} at {_local(b.used_at, settings)}")
    for key in inc.keys:
        r = rows.get(key)
        times = [dt.datetime.fromisoformat(t) for t in (r.escalated or [])] if r is not None else []
        if times and same_episode(r.started_at, episodes.get(key)):
            again = "".join(f", again at {_local(t, settings)}" for t in times[1:])
            lines.append(f"🚨 Escalated at {_local(times[0], settings)}{again} · <code>{messages.escape(key)}</code>")
    if inc.acked_by and inc.acked_at:
        lines.append(f"👀 Acked by {messages.escape(inc.acked_by)} at {_local(inc.acked_at, settings)}")
    if not closed:
        for s in _q().silences_of.execute(conn, id=incident_id, at=now):
            by = f" by {messages.escape(s.created_by)}" if s.created_by else ""
            lines.append(f"🔕 Silenced until {messages.escape(s.ends_at.astimezone(settings.tz).strftime('%a %H:%M'))}"
                         f"{by}")
    if closed and len(inc.keys) > 1:
        lines.insert(0, f"✅ <b>All {len(inc.keys)} resolved</b>")
    text = ("\n".join(lines) + "\n\n" + inc.body) if lines else inc.body
    if messages.utf16_len(text) > messages.MESSAGE_LIMIT:
        text = messages.split_html(text)[0]
    if closed:
        _q().close.execute(conn, id=incident_id, at=now)
    markup = keyboard({a: b.token for a, b in buttons.items()}, acked=bool(inc.acked_at), closed=closed)
    return text, markup, closed


def details(conn: Connection, incident_id: int, settings: Settings) -> str:
    """The evidence rows and reproduce command of every alert of the incident (the Details button)."""
    inc = _q().get.execute(conn, id=incident_id).one()
    blocks = []
    for r in _q().alerts_of.execute(conn, keys=json.dumps(list(inc.keys))):
        lines = [f"🔎 <b>{messages.escape(r.key)}</b> · {messages.escape(r.severity)} · {messages.escape(r.state)}",
                 messages.escape(r.summary)]
        if r.details:
            lines.append(f"<i>{messages.escape(r.details)}</i>")
        evidence = list(r.evidence or [])[:DETAIL_ROWS]
        if evidence:
            total = r.evidence_count if r.evidence_count is not None else len(r.evidence or [])
            lines.append(f"Evidence ({len(evidence)} of {total} rows):")
            lines.append("<pre>" + "\n".join(messages.evidence_row(e) for e in evidence) + "</pre>")
        elif r.evidence_count:
            lines.append(f"Evidence: {r.evidence_count} rows.")
        if r.command:
            lines.append(f"Reproduce: <code>{messages.escape(r.command)}</code>")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) or "Nothing recorded for this incident."


def update_reply(notices: Iterable[AlertNotice], now: dt.datetime) -> str:
    """The short reply under an incident message: what resolved (notice details: the note) and what
    still fires (kind repeat)."""
    blocks = []
    for n in (n for n in notices if n.kind == "resolved"):
        lasted = messages.human_duration(now - n.started_at) if n.started_at else ""
        lines = [f"✅ <b>RESOLVED</b> · {messages.escape(n.severity)} · <code>{messages.escape(n.key)}</code>",
                 f"Resolved after {lasted}." if lasted else "Resolved."]
        if n.details:
            lines.append(f"<i>{messages.escape(n.details)}</i>")
        blocks.append("\n".join(lines))
    for n in (n for n in notices if n.kind == "repeat"):
        since = messages.human_duration(now - n.started_at) if n.started_at else "a while"
        blocks.append(f"🔁 <b>STILL FIRING</b> · {messages.escape(n.severity)} · <code>{messages.escape(n.key)}</code>"
                      f"\n<i>Firing for {since}.</i>")
    return "\n\n".join(blocks)

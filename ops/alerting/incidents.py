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

Buttons carry a short random token as callback_data (under 64 bytes); the
token maps to (incident, action) in the state store, so a forged one finds
nothing, and `episodes` (alert key -> started_at) tells a press on an alert
that changed since from one that is current.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy.engine import Connection

import queries
from ops.alerting import outbox
from ops.alerting import telegram_html as messages
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


@dataclass(frozen=True)
class Opened:
    incident_id: int
    outbox_ids: list[int]


def open_incident(conn: Connection, alerts: Iterable[Any], body: str, now: dt.datetime,
                  *, silent: bool, source: str) -> Opened:
    """Queue the FIRING message of a new incident (with its buttons) for `alerts` (objects with
    key and started_at). The caller sets each alert's incident_id to the returned id."""
    alerts = list(alerts)
    if messages.utf16_len(body) > BODY_LIMIT:
        # one message, so that edits and buttons have one thing to point at; Details has the rest
        body = messages.split_html(body, BODY_LIMIT - 80)[0] + "\n<i>… cut to fit; Details shows the evidence</i>"
    episodes = {a.key: _iso(a.started_at) for a in alerts}
    incident_id = int(_q().create.execute(conn, created_at=now, keys=json.dumps([a.key for a in alerts]),
                                          episodes=json.dumps(episodes), body=body).scalar_one())
    tokens = {action: secrets.token_urlsafe(9) for action in ACTIONS}
    for action, token in tokens.items():
        _q().add_button.execute(conn, token=token, incident_id=incident_id, action=action, created_at=now)
    markup = keyboard(tokens, acked=False, closed=False)
    ids = outbox.enqueue(conn, body, silent=silent, source=source, now=now, incident_id=incident_id,
                         reply_markup=markup)
    return Opened(incident_id, ids)


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


def refresh(conn: Connection, incident_id: int, settings: Settings, now: dt.datetime, *,
            reply: str | None = None, silent: bool = False, source: str = "alerts") -> list[int]:
    """Queue an edit of the incident message to its current state, and optionally a short reply."""
    text, markup, _ = render(conn, incident_id, settings, now)
    ids = outbox.enqueue(conn, text, kind="edit", incident_id=incident_id, reply_markup=markup, source=source,
                         now=now)
    if reply:
        ids += outbox.enqueue(conn, reply, kind="reply", incident_id=incident_id, silent=silent, source=source,
                              now=now)
    return ids


def refresh_for_keys(conn: Connection, keys: Iterable[str], settings: Settings, now: dt.datetime,
                     source: str = "alerts") -> list[int]:
    """Edit the incident message of each of these alerts (after they were closed or acked elsewhere)."""
    rows = list(_q().alerts_of.execute(conn, keys=json.dumps(sorted(set(keys)))))
    ids: list[int] = []
    for incident_id in sorted({r.incident_id for r in rows if r.incident_id is not None}):
        ids += refresh(conn, incident_id, settings, now, source=source)
    return ids


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


def update_reply(resolved: Iterable[tuple[Any, str]], repeats: Iterable[Any], now: dt.datetime) -> str:
    """The short reply under an incident message: what resolved ((alert, note) pairs) and what still fires."""
    blocks = []
    for a, note in resolved:
        lasted = messages.human_duration(now - a.started_at) if a.started_at else ""
        lines = [f"✅ <b>RESOLVED</b> · {messages.escape(a.severity)} · <code>{messages.escape(a.key)}</code>",
                 f"Resolved after {lasted}." if lasted else "Resolved."]
        if note:
            lines.append(f"<i>{messages.escape(note)}</i>")
        blocks.append("\n".join(lines))
    for a in repeats:
        since = messages.human_duration(now - a.started_at) if a.started_at else "a while"
        blocks.append(f"🔁 <b>STILL FIRING</b> · {messages.escape(a.severity)} · <code>{messages.escape(a.key)}</code>"
                      f"\n<i>Firing for {since}.</i>")
    return "\n\n".join(blocks)


"""The chat medium: notices as Telegram HTML rows (also what the console prints).

- opened: one new message with buttons (ops/alerting/telegram/incidents.py), the
  incident's message from then on;
- update: the incident message edited to its current view when an alert of it
  ended, and a short reply (RESOLVED / STILL FIRING) that makes the phone notice;
- state: the edit alone;
- escalated: a new message (never silent, not a reply: a reply to a message
  that went unseen is easy to miss) with the incident's buttons, and the edit
  that says "escalated at ...";
- grouped: one message of alert blocks (split at Telegram's limit);
- text: free HTML text, split at line boundaries.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Connection

from ops.alerting.channel import Draft
from ops.alerting.notices import AlertNotice, Notice
from ops.alerting.telegram import html, incidents


def parts(text: str) -> list[str]:
    return html.split_html(text)


def caption(text: str) -> str:
    return html.caption(text)


def group(notices: list[AlertNotice], environment: str) -> list[list[AlertNotice]]:
    """Alerts that fire together, in as many incident messages as it takes to show every one."""
    pairs = [(n, n) for n in notices]
    return [[n for n, _ in g] for g in incidents.pack(pairs, lambda ns: html.alert_message(ns, environment))]


def render(conn: Connection, notice: Notice, settings: Any, now: dt.datetime) -> list[Draft]:
    if notice.kind == "text":
        return [Draft("text", body, notice.silent) for body in parts(notice.text)]
    if notice.kind == "grouped":
        text = html.alert_message(list(notice.alerts), notice.environment)
        return [Draft("text", body, notice.silent) for body in parts(text)]
    if notice.kind == "opened":
        body, markup = incidents.first_message(conn, notice.incident_id,
                                               html.alert_message(list(notice.alerts), notice.environment), now)
        # one message, so it has no further parts: the buttons go under it
        return [Draft("text", body, notice.silent, notice.incident_id, markup)]
    drafts: list[Draft] = []
    if notice.kind == "escalated":
        text, markup, _ = incidents.render(conn, notice.incident_id, settings, now)
        loud = parts(html.alert_message(list(notice.alerts), notice.environment))
        # the incident's buttons under the last part, so Ack is one tap away from the ringing message
        drafts += [Draft("text", body, False, None, markup if i == len(loud) - 1 else None)
                   for i, body in enumerate(loud)]
        return drafts + [Draft("edit", text, False, notice.incident_id, markup)]
    if notice.kind == "state" or notice.ended:
        text, markup, _ = incidents.render(conn, notice.incident_id, settings, now)
        drafts.append(Draft("edit", text, False, notice.incident_id, markup))
    reply = incidents.update_reply(notice.alerts, now) if notice.kind == "update" else ""
    drafts += [Draft("reply", body, notice.silent, notice.incident_id) for body in parts(reply)]
    return drafts

"""The email medium: one plain-text email per notice.

A row's body is the subject on its first line, a blank line, then the text
(ops/alerting/email/channel.py splits them again). Email cannot edit what it
sent, so a `state` notice (the chat's message edited in place) sends nothing;
an update is its own email ("RESOLVED ...", "STILL FIRING ...").
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from typing import Any

from sqlalchemy.engine import Connection

from ops.alerting.channel import Draft
from ops.alerting.notices import AlertNotice, Notice, human_duration

EVIDENCE_ROWS = 20        # an email has room: more rows than the chat shows
SUBJECT_CHARS = 150
TITLE = {"firing": "FIRING", "repeat": "STILL FIRING", "flapping": "FLAPPING", "resolved": "RESOLVED",
         "escalated": "ESCALATED"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^<>]*>")


def _plain(markup: str) -> str:
    """Free text arrives in the chat's markup (a small HTML subset): what a reader would see."""
    return html.unescape(_TAG.sub("", markup))


def parts(text: str, environment: str | None = None) -> list[str]:
    """Free text as one email: its first line is the subject (an email has no length limit worth a split)."""
    plain = _plain(text).strip()
    if not plain:
        return []
    head = " ".join(plain.splitlines()[0].split())
    return [(f"[{environment}] {head}" if environment else head)[:SUBJECT_CHARS] + f"\n\n{plain}\n"]


def caption(text: str) -> str:
    return _plain(text)


def _row(r: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, default=str) if isinstance(v, (dict, list)) else v}" for k, v in r.items())


def block(n: AlertNotice) -> str:
    since = human_duration(n.now - n.started_at) if n.started_at and n.now else ""
    lines = [f"{TITLE.get(n.kind, n.kind.upper())} · {n.severity} · {n.key}", n.summary]
    if n.kind == "resolved":
        lines.insert(1, f"Resolved after {since}." if since else "Resolved.")
    elif since:
        lines.append(f"Firing for {since}." + (" Nobody has acked it." if n.kind == "escalated" else ""))
    if n.details:
        lines.append(n.details)
    if n.evidence and n.kind != "resolved":
        shown = list(n.evidence)[:EVIDENCE_ROWS]
        total = n.evidence_count if n.evidence_count is not None else len(n.evidence)
        lines.append(f"Evidence ({len(shown)} of {total} rows):")
        lines += [f"  {_row(r)}" for r in shown]
    elif n.evidence_count and n.kind != "resolved":
        lines.append(f"Evidence: {n.evidence_count} rows.")
    if n.command:
        lines.append(f"Reproduce: {n.command}")
    if n.source:
        lines.append(f"job {n.source}")
    return "\n".join(lines)


def subject(notices: list[AlertNotice], environment: str) -> str:
    rank = {"critical": 0, "warning": 1, "info": 2}
    first = min(notices, key=lambda n: (n.kind == "resolved", rank.get(n.severity, 3), n.key))
    more = f" and {len(notices) - 1} more" if len(notices) > 1 else ""
    text = f"[{environment}] {TITLE.get(first.kind, first.kind.upper())} {first.severity}: {first.key}{more}"
    return " ".join(text.split())[:SUBJECT_CHARS]   # one line, whatever the key holds


def email(notices: list[AlertNotice], environment: str) -> str:
    return subject(notices, environment) + "\n\n" + "\n\n".join(block(n) for n in notices) + f"\n\n{environment}\n"


def render(conn: Connection, notice: Notice, settings: Any, now: dt.datetime) -> list[Draft]:
    if notice.kind == "state" or (notice.kind != "text" and not notice.alerts):
        return []
    if notice.kind == "text":
        return [Draft("text", body) for body in parts(notice.text, settings.environment)]
    return [Draft("text", email(list(notice.alerts), notice.environment))]

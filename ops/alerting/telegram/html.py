"""Telegram-ready HTML (the chat medium's markup): escaping, safe splitting, captions, and alert message text.

Telegram's HTML parse mode knows a handful of tags and three entities; any
other `<`, `>` or `&` makes it reject the whole message ("can't parse
entities"). So every value that comes from data goes through `escape()`, and
the only markup is the fixed tags written here.

Limits are counted in UTF-16 code units, as Telegram counts them, on the raw
HTML: that over-counts markup, so a part that fits here always fits there.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from typing import Any, Sequence

from ops.alerting.notices import AlertNotice, human_duration  # noqa: F401  (the chat's text uses both)

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
EVIDENCE_ROWS = 5          # rows of evidence shown in a firing message
EVIDENCE_ROW_CHARS = 300   # one evidence row is cut beyond this

_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^<>]*>")
_ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")


def escape(value: object) -> str:
    """Make any value safe inside Telegram HTML (only <, > and & need it)."""
    return html.escape(str(value), quote=False)


def unescape(text: str) -> str:
    return html.unescape(text)


def to_plain(text: str) -> str:
    """HTML to the text a reader would see: tags dropped, entities decoded.

    Used for the plain-text fallback and the console channel.
    """
    return html.unescape(_TAG.sub("", text))


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# -- splitting ---------------------------------------------------------------

def _open_tags_after(text: str, stack: list[str] | None = None) -> list[str]:
    """The stack of tags still open after `text` (names only)."""
    stack = list(stack or [])
    for m in _TAG.finditer(text):
        closing, name = m.group(1), m.group(2).lower()
        if not closing:
            stack.append(name)
        elif name in stack:
            # close up to the matching opener (Telegram wants proper nesting)
            while stack and stack.pop() != name:
                pass
    return stack


def _fit(text: str, limit: int) -> int:
    """How many characters of `text` fit in `limit` UTF-16 units."""
    idx, units = 0, 0
    for ch in text:
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            break
        idx += 1
    return idx


def _inside_tag(text: str, pos: int) -> int:
    """The start of the tag that `pos` falls inside (text[:pos] ends within <...>), else -1."""
    lt, gt = text.rfind("<", 0, pos), text.rfind(">", 0, pos)
    return lt if lt > gt else -1


def _last_break(text: str, sep: str, end: int) -> int:
    """The last `sep` before `end` that is not inside a tag (attributes hold spaces), else -1."""
    pos = text.rfind(sep, 0, end)
    while pos != -1:
        lt = _inside_tag(text, pos)
        if lt == -1:
            return pos
        pos = text.rfind(sep, 0, lt)
    return -1


def _safe_cut(text: str, limit: int) -> int:
    """Largest index <= the limit (in UTF-16 units) that is not inside a tag or an entity.

    Prefers the last line break in the second half of that span, then the last
    space there, so lines and words stay whole; neither is ever taken inside
    a tag (`<a href="..." title="a b">`).
    """
    cut = _fit(text, limit)
    if cut >= len(text):
        return len(text)
    # not inside <...>
    lt = _inside_tag(text, cut)
    if lt != -1:
        cut = lt
    # not inside &...;
    amp = text.rfind("&", 0, cut)
    if amp != -1 and ";" not in text[amp:cut] and _ENTITY.match(text, amp):
        cut = amp
    for sep in ("\n", " "):
        pos = _last_break(text, sep, cut)
        if pos > cut // 2:
            return pos + 1
    if cut == 0 and text:
        # no room at all: take the first tag or entity whole rather than cut it
        m = _TAG.match(text) or _ENTITY.match(text)
        cut = m.end() if m else 1
    return cut


def _close(stack: list[str]) -> str:
    return "".join(f"</{name}>" for name in reversed(stack))


def _reopen(stack: list[str], openers: dict[str, str]) -> str:
    return "".join(openers.get(name, f"<{name}>") for name in stack)


def shows_text(text: str) -> bool:
    """Whether HTML shows anything but whitespace (Telegram rejects a message that does not)."""
    return bool(to_plain(text).strip())


def split_html(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split HTML into parts of at most `limit` units, at line boundaries.

    A part never ends inside a tag or an entity, and a line is only a
    boundary when no tag is open there, so every part is valid on its own.
    Only a single block longer than the limit (one huge line, or a <pre>
    longer than a message) is cut inside: at its last line break that fits,
    else its last space, else the last character that fits (never inside a
    tag or an entity); there the open tags are closed at the end of the part
    and reopened in the next one.

    What is dropped, precisely: text that fits in one part comes back whole
    (`[text]`). Otherwise the whitespace on either side of every cut is
    dropped, and so is a stretch that would show nothing on its own (only
    whitespace and empty tags), so no part is blank. Hence
    `text == g0 + p1 + g1 + ... + pn + gn` where every gap `g` shows nothing
    (`not shows_text(g)`), the parts being taken without the tags added at
    cuts inside a block. Text that shows nothing gives no part at all.
    """
    if not shows_text(text):
        return []
    if utf16_len(text) <= limit:
        return [text]
    lines = text.splitlines(keepends=True)
    # blocks: runs of lines that end with no tag open
    blocks: list[str] = []
    current, stack = "", []
    for line in lines:
        current += line
        stack = _open_tags_after(line, stack)
        if not stack:
            blocks.append(current)
            current = ""
    if current:
        blocks.append(current)

    parts: list[str] = []
    buf = ""
    for block in blocks:
        if utf16_len(buf) + utf16_len(block) <= limit:
            buf += block
            continue
        if buf:
            parts.append(buf)
            buf = ""
        if utf16_len(block) <= limit:
            buf = block
        else:
            parts.extend(_split_block(block, limit))
    if buf:
        parts.append(buf)
    # every part boundary is a cut: drop the whitespace there, and parts that show nothing
    return [p for p in (part.strip() for part in parts) if shows_text(p)]


def _split_block(block: str, limit: int) -> list[str]:
    """Cut one over-long block; close and reopen the tags open at each cut."""
    openers: dict[str, str] = {}
    parts: list[str] = []
    stack: list[str] = []
    rest = block
    while rest:
        prefix = _reopen(stack, openers)
        if utf16_len(prefix + rest) <= limit:
            if shows_text(rest):
                parts.append(prefix + rest)
            break
        room = limit - utf16_len(prefix)
        while True:  # shrink until the piece plus the tags it must close fits
            cut = _safe_cut(rest, room)
            piece = rest[:cut]
            new_stack = _open_tags_after(piece, stack)
            over = utf16_len(prefix + piece + _close(new_stack)) - limit
            if over <= 0 or room <= 1:
                break
            room -= over
        for m in _TAG.finditer(piece):
            if not m.group(1):
                openers.setdefault(m.group(2).lower(), m.group(0))
        # the whitespace on both sides of the cut is dropped; a piece that
        # shows nothing is left out (its tags still count for the ones to reopen)
        body = piece.rstrip()
        if shows_text(body):
            parts.append(prefix + body + _close(new_stack))
        stack = new_stack
        rest = rest[cut:].lstrip()
    return parts


def caption(text: str, limit: int = CAPTION_LIMIT) -> str:
    """A caption within Telegram's limit: cut as `split_html` cuts, tags closed, '…' added.

    A caption that shows nothing becomes "" (no caption).
    """
    if not shows_text(text):
        return ""
    if utf16_len(text) <= limit:
        return text
    room = limit - 1  # the '…'
    while True:  # shrink until the head plus '…' plus the tags it must close fits
        head = text[:_safe_cut(text, room)].rstrip()
        short = head + "…" + _close(_open_tags_after(head))
        over = utf16_len(short) - limit
        if over <= 0 or room <= 1:
            return short
        room -= over


# -- alert messages ----------------------------------------------------------

SEVERITY_ICON = {"critical": "🔴", "warning": "🟠", "info": "🔵"}
KIND_TITLE = {"firing": "FIRING", "repeat": "STILL FIRING", "flapping": "FLAPPING", "resolved": "RESOLVED",
              "escalated": "ESCALATED"}


def evidence_row(row: dict[str, Any]) -> str:
    """One evidence row as `k=v, ...`, cut at EVIDENCE_ROW_CHARS, escaped."""
    text = ", ".join(f"{k}={_scalar(v)}" for k, v in row.items())
    if len(text) > EVIDENCE_ROW_CHARS:
        text = text[: EVIDENCE_ROW_CHARS - 1] + "…"
    return escape(text)


def _scalar(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str, ensure_ascii=False)
    return str(v)


def _since(n: AlertNotice) -> str:
    if n.started_at and n.now:
        return human_duration(n.now - n.started_at)
    return ""


def alert_block(n: AlertNotice, environment: str | None = None) -> str:
    """The lines for one alert inside a (grouped) message; a lone alert also names the environment."""
    icon = "✅" if n.kind == "resolved" else "🚨" if n.kind == "escalated" else SEVERITY_ICON.get(n.severity, "⚪")
    head = f"{icon} <b>{KIND_TITLE[n.kind]}</b> · {escape(n.severity)} · <code>{escape(n.key)}</code>"
    lines = [head]
    since = _since(n)
    if n.kind == "resolved":
        lines.append(f"Resolved after {since}." if since else "Resolved.")
        lines.append(escape(n.summary))
        if n.details:
            lines.append(f"<i>{escape(n.details)}</i>")
        if environment:
            lines.append(f"<i>{escape(environment)}</i>")
        return "\n".join(lines)
    lines.append(escape(n.summary))
    if n.kind == "repeat" and since:
        lines.append(f"<i>Firing for {since}.</i>")
    if n.kind == "escalated":
        lines.append(f"<i>Firing for {since}, and nobody has acked it.</i>" if since else "<i>Nobody has acked it.</i>")
    if n.details:
        lines.append(f"<i>{escape(n.details)}</i>")
    if n.evidence:
        shown = list(n.evidence)[:EVIDENCE_ROWS]
        total = n.evidence_count if n.evidence_count is not None else len(n.evidence)
        lines.append(f"Evidence ({len(shown)} of {total} rows):")
        lines.append("<pre>" + "\n".join(evidence_row(r) for r in shown) + "</pre>")
    elif n.evidence_count:
        lines.append(f"Evidence: {n.evidence_count} rows.")
    if n.command:
        lines.append(f"Reproduce: <code>{escape(n.command)}</code>")
    footer = [f"job {escape(n.source)}"] if n.source else []
    if environment:
        footer.append(escape(environment))
    if footer:
        lines.append("<i>" + " · ".join(footer) + "</i>")
    return "\n".join(lines)


def alert_message(notices: Sequence[AlertNotice], environment: str) -> str:
    """One message for every alert that changed in one evaluation (grouped).

    A single alert is its block with the environment; several get a header
    line that counts them by kind, most severe first.
    """
    order = {"escalated": 0, "firing": 0, "flapping": 1, "repeat": 2, "resolved": 3}
    rank = {"critical": 0, "warning": 1, "info": 2}
    ordered = sorted(notices, key=lambda n: (order[n.kind], rank.get(n.severity, 3), n.key))
    if len(ordered) == 1:
        return alert_block(ordered[0], environment)
    env = f"<i>{escape(environment)}</i>"
    counts: dict[str, int] = {}
    for n in ordered:
        counts[n.kind] = counts.get(n.kind, 0) + 1
    parts = ", ".join(f"{c} {KIND_TITLE[k].lower()}" for k, c in counts.items())
    worst = min((n for n in ordered if n.kind != "resolved"), key=lambda n: rank.get(n.severity, 3), default=None)
    icon = SEVERITY_ICON.get(worst.severity, "⚪") if worst else "✅"
    header = f"{icon} <b>{len(ordered)} alerts</b>: {parts} · {env}"
    return header + "\n\n" + "\n\n".join(alert_block(n) for n in ordered)


def backlog_notice(count: int, held_for: dt.timedelta) -> str:
    noun = "message was" if count == 1 else "messages were"
    return f"⏳ <b>Delayed delivery</b>: {count} {noun} held for {human_duration(held_for)}; delivering in order."


def with_notice(notice: str, body: str) -> str | None:
    """The backlog line on top of a text, when both fit one message; else None (sent on its own)."""
    merged = notice + "\n\n" + body
    return merged if utf16_len(merged) <= MESSAGE_LIMIT else None

"""Prints the chat's rows as a reader would see them.

The console stands in for the chat when no TELEGRAM_BOT_TOKEN is set, so the
demo shows what would be sent: it takes the same rows (destination "main", the
chat's HTML) and prints their text, buttons and attachments.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import replace
from typing import TextIO

from ops.alerting.channel import BaseChannel, OutgoingMessage, Sent, unpack_album
from ops.alerting.telegram import html


class ConsoleChannel(BaseChannel):
    """Prints messages as a reader would see them. Used when no bot token is configured."""

    key = "console"

    def __init__(self, stream: TextIO | None = None, destination: str = "main"):
        self.stream = stream
        self.destination = destination

    def send(self, message: OutgoingMessage) -> Sent | None:
        out = self.stream or sys.stdout
        if message.kind == "answer":
            print(f"── telegram button answer: {message.body}", file=out, flush=True)
            return None
        flag = " (silent)" if message.silent else ""
        what = {"edit": f"edit of message {message.reply_to}", "reply": f"reply to message {message.reply_to}"}
        rule = f"── telegram {what.get(message.kind, 'message')}{flag} " + "─" * 20
        print(rule, file=out)
        if message.kind == "media_group":
            photos = unpack_album(message.data())
            print(f"[media group: {len(photos)} photos, {sum(len(d) for _, d in photos)} bytes: "
                  f"{', '.join(n for n, _ in photos)}]", file=out)
        elif message.kind in ("photo", "document"):
            size = len(message.data())
            print(f"[{message.kind} {message.filename or ''} {size} bytes]", file=out)
        print(html.to_plain(message.body), file=out)
        if message.reply_markup and message.reply_markup.get("inline_keyboard"):
            buttons = [b.get("text", "") for row in message.reply_markup["inline_keyboard"] for b in row]
            print("[" + "] [".join(buttons) + "]", file=out)
        out.flush()
        return None

    # the console prints the chat's rows, so the backlog line reads as it would there
    def backlog_notice(self, count: int, held: dt.timedelta) -> str:
        return html.backlog_notice(count, held)

    def with_notice(self, notice: str, message: OutgoingMessage) -> OutgoingMessage | None:
        body = html.with_notice(notice, message.body) if message.kind == "text" else None
        return None if body is None else replace(message, body=body)

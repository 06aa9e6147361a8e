"""Notification channels: where outbox messages go.

One small class per channel (as healthchecks does): `TelegramChannel` wraps
the Bot API client, `ConsoleChannel` prints, so the demo shows what would be
sent when no TELEGRAM_BOT_TOKEN is set. The outbox only sees the `Channel`
protocol: `send()` returns when delivered, or raises a `DeliveryError` whose
`outcome` says what to do next (ops.core.errors).
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, TextIO

from sqlalchemy.engine import Engine

import queries
from ops.alerting import telegram_html as messages
from ops.core.clock import utc_now
from ops.core.errors import DeliveryError, Outcome
from ops.core.settings import Settings, SettingsError

log = logging.getLogger("opsbench.channels")


@dataclass(frozen=True)
class OutgoingMessage:
    """One outbox row as a channel sees it."""

    kind: str = "text"                 # text | photo | document | media_group | edit | reply | answer
    body: str = ""                     # HTML text, or caption (answer: the toast text)
    payload: bytes | None = None
    payload_path: str | None = None
    filename: str | None = None
    silent: bool = False
    reply_markup: dict | None = None   # inline keyboard under the message
    reply_to: int | None = None        # reply (and edit): the message id it refers to
    edit_chat_id: str | None = None    # edit: the chat of the message to edit
    callback_query_id: str | None = None   # answer: the button press

    def data(self) -> bytes:
        if self.payload is not None:
            return bytes(self.payload)
        if self.payload_path:
            return Path(self.payload_path).read_bytes()
        raise DeliveryError(f"{self.kind} message has neither payload nor file", outcome=Outcome.never)


@dataclass(frozen=True)
class Sent:
    """Where a delivered message landed (None from send() when there is nothing to point at)."""

    chat_id: str
    message_id: int


class Channel(Protocol):
    key: str  # names the destination, e.g. "telegram:-100123" or "console"

    def send(self, message: OutgoingMessage) -> "Sent | None": ...

    # optional: `set_deadline(seconds_left | None)`, so waits inside send() keep a time budget


class ConsoleChannel:
    """Prints messages as a reader would see them. Used when no bot token is configured."""

    key = "console"

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

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
            from ops.alerting.outbox import unpack_album

            photos = unpack_album(message.data())
            print(f"[media group: {len(photos)} photos, {sum(len(d) for _, d in photos)} bytes: "
                  f"{', '.join(n for n, _ in photos)}]", file=out)
        elif message.kind in ("photo", "document"):
            size = len(message.data())
            print(f"[{message.kind} {message.filename or ''} {size} bytes]", file=out)
        print(messages.to_plain(message.body), file=out)
        if message.reply_markup and message.reply_markup.get("inline_keyboard"):
            buttons = [b.get("text", "") for row in message.reply_markup["inline_keyboard"] for b in row]
            print("[" + "] [".join(buttons) + "]", file=out)
        out.flush()
        return None


class TelegramChannel:
    """Delivers through `ops.alerting.telegram.TelegramClient`; maps its errors to channel outcomes."""

    def __init__(self, client, configured_chat_id: str | None = None):
        self.client = client
        self.configured_chat_id = configured_chat_id or client.chat_id

    @property
    def key(self) -> str:
        return f"telegram:{self.configured_chat_id}"

    def set_deadline(self, seconds_left: float | None) -> None:
        """No wait inside send() may end more than `seconds_left` from now (None: no limit)."""
        self.client.deadline = None if seconds_left is None else self.client.clock() + max(0.0, seconds_left)

    def send(self, message: OutgoingMessage) -> Sent | None:
        from ops.alerting.telegram import TelegramMessageGone

        # the client's errors are DeliveryErrors already; only a lost payload file needs saying
        try:
            data = message.data() if message.kind in ("photo", "document", "media_group") else b""
        except OSError as err:
            raise DeliveryError(f"cannot read {message.payload_path}: {err.strerror}", outcome=Outcome.never) from None
        if message.kind == "answer":
            self.client.answer_callback_query(message.callback_query_id or "", messages.to_plain(message.body))
            return None  # a press too old to answer is let go: the edit shows the result anyway
        if message.kind == "media_group":
            from ops.alerting.outbox import unpack_album

            sent = self.client.send_media_group(unpack_album(data), message.body,
                                                disable_notification=message.silent)
            return _landed(sent[0] if isinstance(sent, list) and sent else sent)
        if message.kind == "photo":
            return _landed(self.client.send_photo(data, message.body, disable_notification=message.silent))
        if message.kind == "document":
            return _landed(self.client.send_document(data, message.filename or "report.html", message.body,
                                                     disable_notification=message.silent))
        if message.kind == "edit" and message.reply_to is not None:
            try:
                self.client.edit_message_text(message.edit_chat_id or self.client.chat_id, message.reply_to,
                                              message.body, message.reply_markup)
                return None
            except TelegramMessageGone as err:
                # deleted, or too old to edit: the news goes out as a new message (with the buttons)
                log.info("Telegram message %s cannot be edited (%s); sending the update as a new message",
                         message.reply_to, err.description)
        # an edit that fell back goes out as a new message, not as a reply to the one it could not edit
        reply_to = message.reply_to if message.kind in ("reply", "text") else None
        sent = self.client.send_message(message.body, disable_notification=message.silent, reply_to=reply_to,
                                        reply_markup=message.reply_markup)
        return _landed(sent[0] if sent else None)


def _landed(result) -> Sent | None:
    if not isinstance(result, dict) or "message_id" not in result:
        return None
    chat = (result.get("chat") or {}).get("id")
    return Sent(str(chat) if chat is not None else "", int(result["message_id"]))


def current_chat_id(engine: Engine | None, configured: str) -> str:
    """The chat id to send to: the configured one, or where it migrated to."""
    if engine is None:
        return configured
    with engine.connect() as conn:
        row = queries.load("state/outbox").chat.execute(conn, configured_chat_id=configured).first()
    return row.chat_id if row else configured


def telegram_client(settings: Settings, engine: Engine | None = None, *, clock: Callable[[], float] | None = None,
                    sleep: Callable[[float], None] | None = None, **client_kwargs):
    """A TelegramClient for the configured chat, following a stored migration and persisting new ones."""
    from ops.alerting.telegram import TelegramClient

    if settings.telegram_bot_token is None:
        raise SettingsError("TELEGRAM_BOT_TOKEN: not set (create a bot with @BotFather and export its token)")
    if not settings.telegram_chat_id:
        raise SettingsError("TELEGRAM_CHAT_ID: required when TELEGRAM_BOT_TOKEN is set")
    configured = str(settings.telegram_chat_id)

    def persist(old: str, new: str) -> None:
        if engine is None:
            return
        with engine.begin() as conn:
            queries.load("state/outbox").chat_migrated.execute(
                conn, configured_chat_id=configured, chat_id=new, at=utc_now())

    return TelegramClient(
        settings.telegram_bot_token.get_secret_value(),
        settings.telegram_api_base,
        current_chat_id(engine, configured),
        settings.telegram_thread_id,
        clock=clock or time.monotonic,
        sleep=sleep or time.sleep,
        on_migrate=persist,
        **client_kwargs,
    )


def from_settings(settings: Settings, engine: Engine | None = None, *, clock: Callable[[], float] | None = None,
                  sleep: Callable[[float], None] | None = None, stream: TextIO | None = None) -> Channel:
    """TelegramChannel when a bot token is configured, else ConsoleChannel."""
    if settings.telegram_bot_token is None:
        return ConsoleChannel(stream)
    client = telegram_client(settings, engine, clock=clock, sleep=sleep)
    return TelegramChannel(client, str(settings.telegram_chat_id))

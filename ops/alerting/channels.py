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

    kind: str = "text"                 # text | photo | document | media_group
    body: str = ""                     # HTML text, or caption
    payload: bytes | None = None
    payload_path: str | None = None
    filename: str | None = None
    silent: bool = False

    def data(self) -> bytes:
        if self.payload is not None:
            return bytes(self.payload)
        if self.payload_path:
            return Path(self.payload_path).read_bytes()
        raise DeliveryError(f"{self.kind} message has neither payload nor file", outcome=Outcome.never)


class Channel(Protocol):
    key: str  # names the destination, e.g. "telegram:-100123" or "console"

    def send(self, message: OutgoingMessage) -> None: ...

    # optional: `set_deadline(seconds_left | None)`, so waits inside send() keep a time budget


class ConsoleChannel:
    """Prints messages as a reader would see them. Used when no bot token is configured."""

    key = "console"

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream

    def send(self, message: OutgoingMessage) -> None:
        out = self.stream or sys.stdout
        flag = " (silent)" if message.silent else ""
        rule = f"── telegram message{flag} " + "─" * 20
        print(rule, file=out)
        if message.kind == "media_group":
            from ops.alerting.outbox import unpack_album

            photos = unpack_album(message.data())
            print(f"[media group: {len(photos)} photos, {sum(len(d) for _, d in photos)} bytes: "
                  f"{', '.join(n for n, _ in photos)}]", file=out)
        elif message.kind != "text":
            size = len(message.data())
            print(f"[{message.kind} {message.filename or ''} {size} bytes]", file=out)
        print(messages.to_plain(message.body), file=out, flush=True)


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

    def send(self, message: OutgoingMessage) -> None:
        # the client's errors are DeliveryErrors already; only a lost payload file needs saying
        try:
            data = message.data() if message.kind != "text" else b""
        except OSError as err:
            raise DeliveryError(f"cannot read {message.payload_path}: {err.strerror}", outcome=Outcome.never) from None
        if message.kind == "media_group":
            from ops.alerting.outbox import unpack_album

            self.client.send_media_group(unpack_album(data), message.body, disable_notification=message.silent)
        elif message.kind == "photo":
            self.client.send_photo(data, message.body, disable_notification=message.silent)
        elif message.kind == "document":
            self.client.send_document(data, message.filename or "report.html", message.body,
                                      disable_notification=message.silent)
        else:
            self.client.send_message(message.body, disable_notification=message.silent)


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

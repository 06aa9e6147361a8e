"""The Telegram channel: delivers outbox rows through the Bot API client and knows Telegram's ways.

What only Telegram knows, kept here rather than in the outbox: a chat that
refuses the bot is remembered in `opsbench.telegram_chats` (reported once,
probed every BLOCKED_RETRY); a chat that migrated is followed; an edit of a
message that is gone becomes a new message; the backlog line fits into the
head message when there is room under 4,096 characters.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import replace
from typing import Callable

from sqlalchemy.engine import Connection, Engine

import queries
from ops.alerting.channel import BLOCKED_RETRY, BaseChannel, OutgoingMessage, Sent, unpack_album
from ops.alerting.telegram import html
from ops.alerting.telegram.client import TelegramClient, TelegramMessageGone
from ops.core.clock import utc_now
from ops.core.errors import DeliveryError, Outcome
from ops.core.redact import redact
from ops.core.settings import Settings, SettingsError

log = logging.getLogger("opsbench.channels")


def _q():
    return queries.load("state/outbox")


class TelegramChannel(BaseChannel):
    """Delivers through `ops.alerting.telegram.client.TelegramClient`; maps its errors to channel outcomes."""

    def __init__(self, client: TelegramClient, configured_chat_id: str | None = None, destination: str = "main"):
        self.client = client
        self.configured_chat_id = configured_chat_id or client.chat_id
        self.destination = destination

    @property
    def key(self) -> str:
        return f"telegram:{self.configured_chat_id}"

    def set_deadline(self, seconds_left: float | None) -> None:
        """No wait inside send() may end more than `seconds_left` from now (None: no limit)."""
        self.client.deadline = None if seconds_left is None else self.client.clock() + max(0.0, seconds_left)

    def held_until(self, conn: Connection) -> dt.datetime | None:
        row = _q().chat.execute(conn, configured_chat_id=self.configured_chat_id).first()
        if row is None or row.blocked_at is None:
            return None
        return (row.blocked_checked_at or row.blocked_at) + BLOCKED_RETRY

    def refused(self, conn: Connection, err: DeliveryError, now: dt.datetime) -> bool:
        return bool(_q().chat_blocked.execute(conn, configured_chat_id=self.configured_chat_id,
                                              chat_id=str(self.client.chat_id), reason=redact(err)[:500],
                                              at=now).scalar_one())

    def accepted(self, conn: Connection, now: dt.datetime) -> None:
        _q().chat_unblocked.execute(conn, configured_chat_id=self.configured_chat_id, at=now)

    def backlog_notice(self, count: int, held: dt.timedelta) -> str:
        return html.backlog_notice(count, held)

    def with_notice(self, notice: str, message: OutgoingMessage) -> OutgoingMessage | None:
        body = html.with_notice(notice, message.body) if message.kind == "text" else None
        return None if body is None else replace(message, body=body)

    def send(self, message: OutgoingMessage) -> Sent | None:
        # the client's errors are DeliveryErrors already; only a lost payload file needs saying
        try:
            data = message.data() if message.kind in ("photo", "document", "media_group") else b""
        except OSError as err:
            raise DeliveryError(f"cannot read {message.payload_path}: {err.strerror}", outcome=Outcome.never) from None
        if message.kind == "answer":
            self.client.answer_callback_query(message.callback_query_id or "", html.to_plain(message.body))
            return None  # a press too old to answer is let go: the edit shows the result anyway
        if message.kind == "media_group":
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
        row = _q().chat.execute(conn, configured_chat_id=configured).first()
    return row.chat_id if row else configured


def telegram_client(settings: Settings, engine: Engine | None = None, *, clock: Callable[[], float] | None = None,
                    sleep: Callable[[float], None] | None = None, **client_kwargs) -> TelegramClient:
    """A TelegramClient for the configured chat, following a stored migration and persisting new ones."""
    if settings.telegram_bot_token is None:
        raise SettingsError("TELEGRAM_BOT_TOKEN: not set (create a bot with @BotFather and export its token)")
    if not settings.telegram_chat_id:
        raise SettingsError("TELEGRAM_CHAT_ID: required when TELEGRAM_BOT_TOKEN is set")
    configured = str(settings.telegram_chat_id)

    def persist(old: str, new: str) -> None:
        if engine is None:
            return
        with engine.begin() as conn:
            _q().chat_migrated.execute(conn, configured_chat_id=configured, chat_id=new, at=utc_now())

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


def connect(settings: Settings, engine: Engine | None = None, *, clock: Callable[[], float] | None = None,
            sleep: Callable[[float], None] | None = None, destination: str = "main") -> TelegramChannel:
    return TelegramChannel(telegram_client(settings, engine, clock=clock, sleep=sleep),
                           str(settings.telegram_chat_id), destination)
